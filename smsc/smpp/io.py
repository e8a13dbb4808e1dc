"""The I/O thread of `smsc.smpp.link.SmppLink`: the only code that touches the SMPP socket. It connects,
binds, writes every PDU and reads every PDU, so no two writes can interleave (smpplib issue #187).
smpplib's read loop is not used: it answers deliver_sm before our handler has committed the MO or
report and dies on one error PDU. The PDUs every SMS crosses go through `smsc.smpp.codec`, at a
fraction of smpplib's CPU; smpplib still encodes the bind and decodes the rare commands. The loop
here matches submit_sm_resp and generic_nack to the window by sequence number, answers deliveries
only after the asyncio side's `Ack`, keeps the link alive with enquire_link and reconnects with
back-off. Work arrives through a queue plus a wake-up socket (`SmppIo.post`); results go back with
`loop.call_soon_threadsafe` / `asyncio.run_coroutine_threadsafe`, and the thread never waits for the
loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from smpplib import command_codes
from smpplib import smpp as pdus
from smpplib.exceptions import UnknownCommandError

from smsc.base import DeliveryReport, InboundSms, LinkState, Outcome, SubmitResult
from smsc.ratelimit import Backoff
from smsc.smpp.codec import (
    ENQUIRE_LINK,
    MAX_PDU,
    SUBMIT_SM,
    UNBIND,
    PduError,
    decode_message_id,
    decode_sm,
    encode,
    encode_sm,
    generic_nack,
)
from smsc.smpp.pdu import (
    BIND_CONFIG_ERRORS,
    COMMAND_NAMES,
    ESM_RECEIPT_BITS,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RUNKNOWNERR,
    ESME_RX_T_APPN,
    Sequences,
    classify_status,
    delivery_report,
    inbound_sms,
    normalise_message_id,
    status_text,
)

if TYPE_CHECKING:
    from gateway.config import SmscSection

log = structlog.get_logger(__name__)

UNBIND_WAIT = 2.0
_BODILESS = frozenset({"enquire_link", "enquire_link_resp", "unbind", "unbind_resp"})

# The asyncio side's handler for one MO or report: (item, response PDU name, sequence, generation).
InboundHandler = Callable[[InboundSms | DeliveryReport, str, int, int], Coroutine[Any, Any, None]]


class _LinkDown(Exception):
    """The connection is unusable; the thread closes it and reconnects."""


class _BindRefused(_LinkDown):
    def __init__(self, status: int) -> None:
        super().__init__(f"bind refused: {status_text(status)}")
        self.status = status


class _StopRequested(Exception):
    pass


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[SubmitResult]
    deadline: float


class SmppIo:
    """One link's I/O thread and its state. `on_state` and `on_inbound` run on the event loop."""

    def __init__(
        self,
        cfg: SmscSection,
        *,
        password: str,
        on_state: Callable[[LinkState], None],
        on_inbound: InboundHandler,
    ) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self._password = password
        self._on_state, self._on_inbound = on_state, on_inbound
        self._seq = Sequences()
        self._cmds: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        # Created in start(): a link that is built but never started must not hold sockets.
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.done: asyncio.Future[None] | None = None  # resolved when the thread has exited
        self._stop_req = False
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._generation = 0
        self._pending: dict[int, _Pending] = {}
        self._bind_seq: int | None = None
        self._bind_status: int | None = None
        self._bound = False
        self._unbind_seq: int | None = None
        self._last_rx = 0.0
        self._keepalive_seq: int | None = None
        self._keepalive_due = 0.0
        self.reconnects = 0
        self.bad_pdus = 0

    # --- called from the event loop -----------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.done = loop.create_future()
        self._thread = threading.Thread(target=self._run, name=f"smpp-{self.name}", daemon=True)
        self._thread.start()

    def post(self, *item: Any) -> None:
        """Hand the thread one command: ("submit", fields, future), ("resp", generation, name, seq,
        status) or ("stop",)."""
        self._cmds.put(item)
        # A full wake-up buffer already guarantees the thread will look at the queue.
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def finish(self) -> bool:
        """After "stop": wait briefly for the thread, fail what is still queued and release the wake-up
        socket. False when the thread is still stuck (in a connect() to a black-holed host): it stops at
        its next look at the flag, and the wake-up socket stays open until then."""
        assert self._thread is not None and self._wake_r is not None and self._wake_w is not None
        self._thread.join(timeout=1.0)
        self._fail_queued("link stopped")
        if self._thread.is_alive():
            self._stop_req = True
            return False
        self._wake_r.close()
        self._wake_w.close()
        return True

    # --- bridge to the event loop -------------------------------------------------------------

    def _call(self, fn: Any, *args: Any) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                self._loop.call_soon_threadsafe(fn, *args)

    def _resolve(self, future: asyncio.Future[SubmitResult], result: SubmitResult) -> None:
        self._call(_set_result, future, result)

    def _report_state(self, state: LinkState) -> None:
        self._call(self._on_state, state)

    def _fail_queued(self, reason: str) -> None:
        while True:
            try:
                item = self._cmds.get_nowait()
            except queue.Empty:
                return
            if item[0] == "submit":
                self._resolve(item[2], SubmitResult(Outcome.TEMPORARY, error=reason))
            elif item[0] == "stop":
                self._stop_req = True

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            self._resolve(p.future, SubmitResult(Outcome.TEMPORARY, error=reason))

    # --- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(self.cfg.reconnect_min_seconds, self.cfg.reconnect_max_seconds)
        state = LinkState.CONNECTING
        try:
            while not self._stop_req:
                self._report_state(state)
                delay = backoff.next()
                try:
                    self._connect_and_bind()
                    backoff.reset()
                    delay = backoff.next()
                    self._report_state(LinkState.ACTIVE)
                    self._serve()
                except _StopRequested:
                    break
                except _BindRefused as exc:
                    if exc.status in BIND_CONFIG_ERRORS:
                        log.error("smpp.bind_refused", link=self.name, error=str(exc), retry_in=delay)
                        delay = self.cfg.reconnect_max_seconds
                    else:
                        log.warning("smpp.bind_refused", link=self.name, error=str(exc), retry_in=delay)
                except _LinkDown as exc:
                    log.warning("smpp.link_down", link=self.name, reason=str(exc), retry_in=delay)
                except Exception:
                    log.exception("smpp.thread_error", link=self.name)
                finally:
                    self._close("connection closed")
                if self._stop_req:
                    break
                state = LinkState.RECONNECTING
                self._report_state(state)
                self.reconnects += 1
                self._idle(delay)
        finally:
            self._close("link stopped")
            self._fail_queued("link stopped")
            log.info("smpp.thread_exit", link=self.name)
            if self.done is not None:
                self._call(_set_result, self.done, None)

    def _connect_and_bind(self) -> None:
        cfg = self.cfg
        try:
            sock = socket.create_connection((cfg.host, cfg.port), timeout=cfg.response_timeout_seconds)
        except OSError as exc:
            raise _LinkDown(f"connect {cfg.host}:{cfg.port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._buf, self._bound = sock, bytearray(), False
        self._generation += 1
        self._last_rx = time.monotonic()
        self._keepalive_seq = None
        try:
            bind = pdus.make_pdu(
                "bind_transceiver", client=self._seq, system_id=cfg.system_id, password=self._password,
                system_type=cfg.system_type, addr_ton=0, addr_npi=0, address_range="",
            )  # fmt: skip
            data = bind.generate()
        except (UnicodeError, ValueError, struct.error) as exc:
            raise _BindRefused(0x0D) from exc
        self._bind_seq, self._bind_status = bind.sequence, None
        self._send(data)
        deadline = time.monotonic() + cfg.response_timeout_seconds
        while self._bind_status is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _LinkDown("no bind_transceiver_resp")
            self._poll(left)
        if self._bind_status != 0:
            raise _BindRefused(self._bind_status)
        self._bound = True
        log.info("smpp.bound", link=self.name, host=cfg.host, port=cfg.port, system_id=cfg.system_id)

    def _serve(self) -> None:
        while True:
            now = time.monotonic()
            wake = [p.deadline for p in self._pending.values()]
            if self._keepalive_seq is None:
                wake.append(self._last_rx + self.cfg.enquire_link_seconds)
            else:
                wake.append(self._keepalive_due)
            self._poll(max(0.0, min(wake) - now) if wake else 5.0)
            self._timers(time.monotonic())

    def _timers(self, now: float) -> None:
        expired = [seq for seq, p in self._pending.items() if p.deadline <= now]
        for seq in expired:
            p = self._pending.pop(seq)
            log.warning("smpp.response_timeout", link=self.name, seq=seq)
            self._resolve(p.future, SubmitResult(Outcome.TEMPORARY, error="no submit_sm_resp in time"))
        if self._keepalive_seq is not None:
            if now >= self._keepalive_due:
                raise _LinkDown("no enquire_link_resp")
        elif now - self._last_rx >= self.cfg.enquire_link_seconds:
            self._keepalive_seq = self._seq.next_sequence()
            self._keepalive_due = now + self.cfg.response_timeout_seconds
            self._send(encode(ENQUIRE_LINK, self._keepalive_seq))

    def _idle(self, delay: float) -> None:
        """Wait out a back-off delay while failing any submit that slips in; return early on stop."""
        deadline = time.monotonic() + delay
        while not self._stop_req and (left := deadline - time.monotonic()) > 0:
            select.select([self._wake_r], [], [], left)
            self._drain_wake()
            self._fail_queued("link down")

    def _poll(self, timeout: float) -> None:
        assert self._sock is not None
        readable, _, _ = select.select([self._sock, self._wake_r], [], [], timeout)
        if self._wake_r in readable:
            self._drain_wake()
            self._commands()
        if self._sock in readable:
            self._read()

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def _commands(self) -> None:
        while True:
            try:
                item = self._cmds.get_nowait()
            except queue.Empty:
                return
            kind = item[0]
            if kind == "submit":
                self._send_submit(item[1], item[2])
            elif kind == "resp":
                _, gen, name, seq, status = item
                if gen == self._generation:  # an answer for a dead connection would hit a new one
                    self._send_resp(name, seq, status)
            elif kind == "stop":
                self._stop_req = True
                self._unbind()
                raise _StopRequested

    def _send_submit(self, fields: dict[str, Any], future: asyncio.Future[SubmitResult]) -> None:
        if future.done():
            return
        if not self._bound or self._stop_req:
            self._resolve(future, SubmitResult(Outcome.TEMPORARY, error="not bound"))
            return
        seq = self._seq.next_sequence()
        try:
            data = encode_sm(SUBMIT_SM, seq, **fields)
        except (UnicodeError, ValueError, struct.error) as exc:
            self._resolve(future, SubmitResult(Outcome.MALFORMED, error=f"cannot encode submit_sm: {exc}"))
            return
        self._pending[seq] = _Pending(future, time.monotonic() + self.cfg.response_timeout_seconds)
        self._send(data)

    def _send_resp(self, name: str, seq: int, status: int) -> None:
        self._send(encode(command_codes.commands[name], seq, status))

    def _send(self, data: bytes) -> None:
        if self._sock is None:
            raise _LinkDown("not connected")
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise _LinkDown(f"write failed: {exc}") from exc

    def _unbind(self) -> None:
        if self._sock is None or not self._bound:
            return
        try:
            self._unbind_seq = self._seq.next_sequence()
            self._send(encode(UNBIND, self._unbind_seq))
            deadline = time.monotonic() + min(UNBIND_WAIT, self.cfg.response_timeout_seconds)
            while self._unbind_seq is not None and (left := deadline - time.monotonic()) > 0:
                self._poll(left)
        except _LinkDown:
            pass
        log.info("smpp.unbound", link=self.name, answered=self._unbind_seq is None)

    def _close(self, reason: str) -> None:
        self._bound = False
        self._fail_pending(reason)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    # --- reading ------------------------------------------------------------------------------

    def _read(self) -> None:
        assert self._sock is not None
        try:
            chunk = self._sock.recv(65536)
        except OSError as exc:
            raise _LinkDown(f"read failed: {exc}") from exc
        if not chunk:
            raise _LinkDown("closed by peer")
        self._buf += chunk
        while len(self._buf) >= 4:
            (length,) = struct.unpack_from(">I", self._buf)
            if not 16 <= length <= MAX_PDU:
                # No way to find the next PDU boundary in a byte stream: say so and start afresh.
                self.bad_pdus += 1
                log.error("smpp.garbage", link=self.name, length=length, head=bytes(self._buf[:16]).hex())
                with contextlib.suppress(_LinkDown):
                    self._send(generic_nack(0, ESME_RINVCMDLEN))
                raise _LinkDown("unframeable bytes from peer")
            if len(self._buf) < length:
                return
            raw = bytes(self._buf[:length])
            del self._buf[:length]
            self._last_rx = time.monotonic()
            self._dispatch(raw)

    def _nack(self, seq: int, status: int) -> None:
        self._send(generic_nack(seq, status))

    def _dispatch(self, raw: bytes) -> None:
        _, command_id, status, seq = struct.unpack_from(">IIII", raw)
        name = COMMAND_NAMES.get(command_id)
        is_request = not command_id & 0x80000000
        if name is None:
            self.bad_pdus += 1
            log.warning("smpp.unknown_command", link=self.name, command_id=f"0x{command_id:08X}", seq=seq)
            if is_request:
                self._nack(seq, ESME_RINVCMDID)
            return
        if name == "generic_nack":
            self._on_nack(seq, status)
            return
        if name == "submit_sm_resp":
            self._on_submit_resp(seq, status, raw)
            return
        pdu: Any = None
        if name == "deliver_sm":
            pdu = decode_sm(raw)
            if isinstance(pdu, PduError):
                self._bad_pdu(name, seq, pdu.reason, pdu.status)
                return
        elif name not in _BODILESS:  # binds' responses, data_sm and the rare commands
            try:
                pdu = pdus.parse_pdu(raw, client=self._seq, allow_unknown_opt_params=True)
            except UnknownCommandError:  # an SMPP command smpplib has no class for, e.g. cancel_sm
                log.warning("smpp.unsupported_command", link=self.name, command=name, seq=seq)
                if is_request:
                    self._nack(seq, ESME_RINVCMDID)
                return
            except Exception as exc:
                self._bad_pdu(name, seq, repr(exc), ESME_RUNKNOWNERR if is_request else None)
                return
        if name in ("bind_transceiver_resp", "bind_transmitter_resp", "bind_receiver_resp"):
            if seq == self._bind_seq:
                self._bind_status = status
        elif name == "enquire_link":
            self._send_resp("enquire_link_resp", seq, 0)
        elif name == "enquire_link_resp":
            if seq == self._keepalive_seq:
                self._keepalive_seq = None
        elif not self._bound and is_request:
            self._nack(seq, ESME_RINVBNDSTS)
        elif name in ("deliver_sm", "data_sm"):
            self._on_deliver(pdu, name, seq)
        elif name == "unbind":
            self._send_resp("unbind_resp", seq, 0)
            log.warning("smpp.unbind_by_smsc", link=self.name)
            raise _LinkDown("unbind from SMSC")
        elif name == "unbind_resp":
            if seq == self._unbind_seq:
                self._unbind_seq = None
        elif name == "alert_notification":
            log.info("smpp.alert_notification", link=self.name)
        elif is_request:
            log.warning("smpp.unsupported_command", link=self.name, command=name, seq=seq)
            self._nack(seq, ESME_RINVCMDID)
        else:
            log.info("smpp.unexpected_response", link=self.name, command=name, seq=seq)

    def _bad_pdu(self, name: str, seq: int, error: str, nack_status: int | None) -> None:
        """Count and log an unreadable PDU; a request is answered with `nack_status`."""
        self.bad_pdus += 1
        log.warning("smpp.bad_pdu", link=self.name, command=name, seq=seq, error=error)
        if nack_status is not None:
            self._nack(seq, nack_status)

    def _on_nack(self, seq: int, status: int) -> None:
        log.warning("smpp.generic_nack", link=self.name, seq=seq, status=status_text(status))
        p = self._pending.pop(seq, None)
        if p is not None:
            outcome = classify_status(status) if status else Outcome.TEMPORARY
            self._resolve(p.future, SubmitResult(outcome, error="generic_nack " + status_text(status)))
        elif seq == self._keepalive_seq:
            self._keepalive_seq = None
        elif seq == self._bind_seq and self._bind_status is None:
            self._bind_status = status or ESME_RUNKNOWNERR

    def _on_submit_resp(self, seq: int, status: int, raw: bytes) -> None:
        p = self._pending.pop(seq, None)
        if p is None:
            log.info("smpp.late_submit_resp", link=self.name, seq=seq, status=status_text(status))
            return
        if status:
            result = SubmitResult(classify_status(status), error=status_text(status))
        else:
            mid = normalise_message_id(decode_message_id(raw), self.cfg.message_id_type, receipt=False)
            if not mid:
                log.warning("smpp.empty_message_id", link=self.name, seq=seq)
            result = SubmitResult(Outcome.ACCEPTED, message_id=mid or None)
        self._resolve(p.future, result)

    def _on_deliver(self, pdu: Any, name: str, seq: int) -> None:
        resp = name + "_resp"
        if self._unbind_seq is not None:  # stopping: the SMSC must keep it and deliver it again later
            self._send_resp(resp, seq, ESME_RX_T_APPN)
            return
        esm = getattr(pdu, "esm_class", 0) or 0
        data = getattr(pdu, "short_message", None) or getattr(pdu, "message_payload", None) or b""
        item: InboundSms | DeliveryReport | None
        if esm & ESM_RECEIPT_BITS:
            item = delivery_report(pdu, data, self.cfg.message_id_type)
            if item is None:
                # Re-delivery would bring the same bytes again; acknowledge and keep the evidence.
                self.bad_pdus += 1
                log.warning("smpp.bad_receipt", link=self.name, seq=seq, data=bytes(data)[:200].hex())
                self._send_resp(resp, seq, 0)
                return
        else:
            item = inbound_sms(pdu, bytes(data), esm)
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._on_inbound(item, resp, seq, self._generation), self._loop)


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)
