"""The SMPP 3.4 link driver: one transceiver bind to one SMSC, behind `smsc.base.SmscLink`.

`SmppLink` runs on the event loop with asyncio streams, as `smsc.cimd2.link` does: it connects, binds
with a PDU smpplib builds, serves the connection (`smsc.smpp.connection`: framing, keep-alive,
deliveries answered after the handler's `Ack`; `smsc.smpp.submits`: answers matched by sequence number)
and reconnects with `smsc.pacing.backoff`. smpplib's own read loop is not used: it answers deliver_sm
before our handler has committed the MO or report and dies on one error PDU. The PDUs every SMS crosses
go through `smsc.smpp.codec`. Pacing (window, rate, throttle pauses) is the dispatcher's `LinkPacer`;
this driver only reports each submit's `Outcome`. The status tables and the PDU field mapping live in
`smsc.smpp.pdu`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Callable

import structlog
from smpplib import smpp as pdus

from smsc.base import (
    Ack,
    DeliveryReport,
    InboundSms,
    LinkEvents,
    LinkState,
    LinkStats,
    OnWire,
    OutboundSms,
    Outcome,
    SubmitResult,
)
from smsc.linkturns import ended, rest, run_turns
from smsc.outage import Outage, outage_words, session_held
from smsc.pacing import backoff, reconnect_attempt, stable_after
from smsc.sessiontasks import SessionTasks
from smsc.settings import LinkSettings, password_key
from smsc.smpp.codec import encode_submit
from smsc.smpp.connection import SmppConnection
from smsc.smpp.enquiries import Refusals
from smsc.smpp.lostreceipts import ReceiptGrace
from smsc.smpp.pdu import BIND_CONFIG_ERRORS, ESME_RBINDFAIL, BadDestination, Sequences, submit_values

# Callers import these `smsc.smpp.pdu` names from here.
from smsc.smpp.pdu import classify_status as classify_status
from smsc.smpp.pdu import normalise_message_id as normalise_message_id
from smsc.smpp.pdu import source_address as source_address
from smsc.smpp.pdu import status_text as status_text
from smsc.smpp.submits import DEFAULT_WINDOW, QueueFull, ValidityForm
from smsc.tls import TlsFaults, TlsFileError, open_stream

log = structlog.get_logger(__name__)

DRAIN_WAIT = 5.0


def login_refused(name: str, status: int, password_key: str = "password") -> str:
    """A bind refused for its credentials (ESME_RINVPASWD, ESME_RINVSYSID), in words and with the keys
    to check: "bind refused: ESME_RINVPASWD (0x0E)" alone named neither. Never the password itself:
    the line goes to the journal and `smsgw status`."""
    link = json.dumps(name, ensure_ascii=False)  # as TOML quotes it (gateway.configbase.quoted)
    return (
        f"bind refused: {status_text(status)}: the SMSC refused the login:"
        f" check [[smsc]] {link} system_id and {password_key}"
    )


def bind_failed(name: str, password_key: str = "password") -> str:
    """ESME_RBINDFAIL in words: the SMSC did not say why, and blaming the credentials alone sent the
    admin to a password that was right while the SMSC still held our old session or its limit."""
    link = json.dumps(name, ensure_ascii=False)
    return (
        f"bind refused: {status_text(ESME_RBINDFAIL)}: the SMSC refused the bind without saying why"
        " (a limit on sessions, an address it does not allow, a session of ours it still holds, or"
        f" the login: [[smsc]] {link} system_id and {password_key})"
    )


def _resolved(result: SubmitResult) -> asyncio.Future[SubmitResult]:
    future: asyncio.Future[SubmitResult] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future


class SmppLink:
    """A transceiver bind to one SMSC; see `smsc.base` for the rules every driver follows."""

    def __init__(self, cfg: LinkSettings, *, password: str | Callable[[], str]) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.state = LinkState.DISCONNECTED
        self.window = cfg.window or DEFAULT_WINDOW
        self._password = password
        # The daemon's clock (epoch seconds), which a part's expiry is set by: its relative validity is
        # counted on it (`submit_values`). The daemon gives its own; the host's until then.
        self.clock: Callable[[], float] = time.time
        self._seq = Sequences()
        self._events: LinkEvents | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: SmppConnection | None = None
        self._stopping = False
        self._wake = asyncio.Event()  # cuts a back-off sleep short on stop()
        self._drained = asyncio.Event()
        self._in_flight, self._failures = 0, 0  # the latter: turns in a row that failed (`backoff`)
        self._bound_at: float | None = None  # loop time of this session's bind: see `reconnect_attempt`
        self._held = False  # this session held (`session_held`): only such a one resets the back-off
        self._submitted = self._throttled = self._errors = self._bad_pdus = self._reconnects = 0
        self._last_error, self._last_error_at = "", None  # `LinkStats.last_error`
        self._outage = Outage()  # since when no session is up: `LinkStats.down_since`
        self._tls_faults = TlsFaults(self.name, "smpp.tls_failed")
        self._overflowed: OrderedDict[int, int] = OrderedDict()  # 0x45 read as a full window (`Submits`)
        self._queue_full = QueueFull()  # parts answered ESME_RMSGQFUL (`Submits.queue_full`)
        self._validity = ValidityForm(cfg)  # absolute since a relative one was refused (`Submits.validity`)
        self._enquiry_refusals = Refusals()  # enquire_link answered with a generic_nack: warned once
        self._grace = ReceiptGrace(cfg, lambda: self.clock())  # submits lost with a session (`lostreceipts`)
        if len(cfg.system_id) > 15:
            log.warning("smpp.system_id_too_long", link=self.name, length=len(cfg.system_id), limit=15)
        self._long_said = 0  # the length of a too long password last warned of (a file's: each change)
        if isinstance(password, str):
            self._too_long(password)

    def _too_long(self, password: str) -> None:
        """SMPP 3.4 cuts a password past 8 characters: said once, and again for a file changed to a
        too-long password of another length (the length is all it keeps, never the password)."""
        if len(password) > 8 and len(password) != self._long_said:
            log.warning("smpp.password_too_long", link=self.name, length=len(password), limit=8)
        self._long_said = len(password) if len(password) > 8 else 0

    # --- SmscLink -------------------------------------------------------------------------------------

    async def start(self, events: LinkEvents) -> None:
        if self._task is not None or self._stopping:
            return
        self._events = events
        self._task = asyncio.create_task(self._run(), name=f"smpp:{self.name}")

    async def submit(self, sms: OutboundSms) -> SubmitResult:
        return await self.send(sms)

    def send(self, sms: OutboundSms, on_wire: OnWire | None = None) -> asyncio.Future[SubmitResult]:
        """Write the submit_sm now, in the caller's step, and return the future of its answer: a
        window place freed by an answer is filled again without waiting for a turn of the loop."""
        conn = self._conn
        if self._stopping or self.state is not LinkState.ACTIVE or conn is None or not conn.bound:
            return _resolved(SubmitResult(Outcome.TEMPORARY, error=self._refusal(conn), unsent=True))
        try:
            seq = self._seq.next_sequence()
            data = encode_submit(seq, *submit_values(sms, self._validity.cfg, self.clock()))
        except (UnicodeError, ValueError, struct.error) as exc:
            self._errors += 1
            outcome = Outcome.REJECTED if isinstance(exc, BadDestination) else Outcome.MALFORMED
            return _resolved(SubmitResult(outcome, error=str(exc)))
        future = conn.send_submit(seq, data, sms)
        if on_wire is not None and not future.done():  # written: one not written is answered at once
            on_wire()
        self._in_flight += 1
        self._drained.clear()
        future.add_done_callback(self._answered)
        return future

    def _refusal(self, conn: SmppConnection | None) -> str:
        """Why `send` wrote nothing, in the words of what happened: the state alone said "link active"
        for the parts refused while the session ends (the SMSC's unbind, a connection closing)."""
        if self._stopping:
            return "link stopping"
        if conn is not None and conn.peer_unbound_until is not None:
            return "link closing: the SMSC asked to unbind"
        if conn is not None and conn.closed.is_set():
            return f"link closing: {conn.reason}" if conn.reason else "link closing"
        if self.state is LinkState.ACTIVE:  # the session ends: its connection is gone or no longer bound
            return "link closing"
        return f"link {self.state.value}"

    def _answered(self, future: asyncio.Future[SubmitResult]) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._drained.set()
        if future.cancelled():
            return
        result = future.result()
        if result.outcome is Outcome.ACCEPTED:
            self._submitted += 1
        elif result.outcome is Outcome.THROTTLED:
            self._throttled += 1
            log.info("smpp.throttled", link=self.name, error=result.error)
        else:
            self._errors += 1

    async def stop(self, *, drain: bool = True) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        conn = self._conn
        if conn is not None:
            wait = min(DRAIN_WAIT, self.cfg.response_timeout_seconds)
            if drain and self._in_flight:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._drained.wait(), wait)
            # MOs and reports being committed, those read meanwhile too, are answered before the
            # unbind, whose unbind_resp then confirms their acknowledgements.
            deadline = asyncio.get_running_loop().time() + wait
            while conn.tasks and (left := deadline - asyncio.get_running_loop().time()) > 0:
                await asyncio.wait(set(conn.tasks), timeout=left)
            await conn.unbind()
            conn.close("link stopped")
        if self._task is not None:
            await ended(self._task, self.name, "smpp")
        self._grace.stop()  # after the unbind: a receipt read until then still answers a lost submit
        self._set_state(LinkState.STOPPED)

    def stats(self) -> LinkStats:
        bad_pdus = self._bad_pdus + (self._conn.bad_pdus if self._conn is not None else 0)
        return LinkStats(
            state=self.state,
            in_flight=self._in_flight,
            window=self.window,
            submitted=self._submitted,
            throttled=self._throttled,
            errors=self._errors + bad_pdus,
            reconnects=self._reconnects,
            extra={"peer": f"{self.cfg.host}:{self.cfg.port}", "bad_pdus": str(bad_pdus)},
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            down_since=self._outage.since,
            down_attempts=self._outage.attempts,
        )

    # --- connection lifecycle -------------------------------------------------------------------------

    def _set_state(self, state: LinkState) -> None:
        if self.state is LinkState.STOPPED or self.state is state:
            return
        self.state = state
        self._grace.session_up(state is LinkState.ACTIVE)  # lost submits go a settle after a bind
        log.debug("smpp.state", link=self.name, state=state.value)
        if self._events is not None:
            try:
                self._events.on_state(self.name, state)
            except Exception:
                log.exception("smpp.on_state_failed", link=self.name)

    async def _run(self) -> None:
        stopping, longest = (lambda: self._stopping), self.cfg.reconnect_max_seconds
        await run_turns(self.name, "smpp", self._turn, self._turn_failed, stopping, self._wake, longest)

    def _turn_failed(self, error: str) -> None:
        self._last_error, self._last_error_at = f"link task failed: {error}", time.time()
        self._reconnects += 1
        self._set_state(LinkState.RECONNECTING)

    async def _turn(self, first: bool) -> None:
        """One session, then the wait before the next (`smsc.linkturns`)."""
        cfg = self.cfg
        self._set_state(LinkState.CONNECTING if first else LinkState.RECONNECTING)
        self._bound_at, self._held = None, False
        try:
            result, reason = await self._session()
        except Exception:  # a bug here must not end the link for good: log it and reconnect
            log.exception("smpp.session_failed", link=self.name)
            result, reason = "failed", "session failed"
        if self._stopping:
            return
        self._last_error, self._last_error_at = reason or result, time.time()
        self._outage.ended()
        now = asyncio.get_running_loop().time()
        bound_for = None if self._bound_at is None or not self._held else now - self._bound_at
        self._failures = reconnect_attempt(self._failures, bound_for, cfg.reconnect_max_seconds)
        if result == "config":
            delay = cfg.reconnect_max_seconds
        else:
            delay = backoff(self._failures, cfg.reconnect_min_seconds, cfg.reconnect_max_seconds)
        if result != "config":  # a configuration error was logged as such
            # Once an attempt, with the outage's length: a 30-s blip and a 20-min outage read apart.
            down_for = outage_words(self._outage.down_for() or 0.0)
            log.warning("smpp.link_down", link=self.name, reason=reason, retry_in=delay, down_for=down_for)
        self._set_state(LinkState.RECONNECTING)
        self._reconnects += 1
        await rest(self._wake, delay)

    async def _session(self) -> tuple[str, str]:
        """Connect, bind and serve until the connection ends: ("served" | "failed" | "config", why)."""
        cfg = self.cfg
        try:
            password = self._password() if callable(self._password) else self._password
        except (OSError, ValueError) as exc:  # the file's words: the key and the file, never the password
            log.error("smpp.password_unreadable", link=self.name, error=str(exc))
            return "config", str(exc)
        self._too_long(password)
        try:
            reader, writer = await open_stream(cfg.host, cfg.port, cfg.tls, cfg.response_timeout_seconds)
        except (OSError, TimeoutError, TlsFileError) as exc:
            return "failed", self._tls_faults.connect_failed(cfg, exc)  # a TLS fault: logged once
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = SmppConnection(cfg, reader, writer, self._seq, self._handle_inbound, self._acked)
        conn.submits.overflowed = self._overflowed  # the link's: a reconnect does not reset it
        conn.submits.queue_full = self._queue_full
        conn.submits.validity = self._validity
        conn.submits.grace = conn.deliveries.grace = self._grace
        conn.enquiries.refusals = self._enquiry_refusals
        self._conn = conn
        tasks = [asyncio.create_task(conn.read_loop(), name=f"smpp-read:{self.name}")]
        try:
            try:
                bind = pdus.make_pdu(
                    "bind_transceiver", client=self._seq, system_id=cfg.system_id, password=password,
                    system_type=cfg.system_type, addr_ton=0, addr_npi=0, address_range="",
                )  # fmt: skip
                data = bind.generate()
            except (UnicodeError, ValueError, struct.error) as exc:
                # Not the exception's words: they quote the offending character of the password.
                why = "a field is not ASCII" if isinstance(exc, UnicodeError) else type(exc).__name__
                log.error("smpp.bind_refused", link=self.name, error=f"cannot encode bind ({why}):"
                          " system_id, password and system_type must be ASCII")  # fmt: skip
                return "config", "bind not encodable"
            conn.bind_seq = bind.sequence
            conn.send(data)
            try:
                status = await asyncio.wait_for(
                    asyncio.shield(conn.bind_status), cfg.response_timeout_seconds
                )
            except TimeoutError:  # a silent port, or another protocol's (CIMD2 waits for its own login)
                return "failed", (
                    f"no answer to bind in {cfg.response_timeout_seconds:g} s: is {cfg.host}:{cfg.port} an"
                    " SMPP port (CIMD2 is usually 9971)?"
                )
            if status is None:  # a TLS 1.3 SMSC refuses our client certificate here, at the first read
                return "failed", self._tls_faults.closed(
                    conn.reason, cfg.tls
                ) or "closed before bind_transceiver_resp"
            if status != 0:
                error = f"bind refused: {status_text(status)}"
                if status in BIND_CONFIG_ERRORS:
                    error = login_refused(self.name, status, password_key(self._password))
                    retry_in = cfg.reconnect_max_seconds
                    log.error("smpp.bind_refused", link=self.name, error=error, retry_in=retry_in)
                    return "config", error
                if status == ESME_RBINDFAIL:
                    error = bind_failed(self.name, password_key(self._password))
                return "failed", error
            log.info("smpp.bound", link=self.name, host=cfg.host, port=cfg.port, system_id=cfg.system_id,
                     tls=cfg.tls is not None)  # fmt: skip
            self._tls_faults.bound()
            watch = SessionTasks(conn, "smpp.session_task_failed", self.name)
            tasks.append(watch(conn.keepalive_loop(), "keepalive"))
            self._bound_at = asyncio.get_running_loop().time()
            self._outage.bound()
            conn.answered.clear()
            self._set_state(LinkState.ACTIVE)
            # Up only once it held: an SMSC that drops each bind at once, or answers nothing after
            # it, is still down (`Outage`, `session_held`).
            after = stable_after(cfg.reconnect_max_seconds)
            held = await session_held(conn.closed, conn.answered, after, self._probe)
            self._held = held
            if held and (outage := self._outage.held()) is not None:
                down_for, attempts = outage_words(outage[0]), outage[1]
                log.warning(
                    "smpp.up_again", link=self.name, down_for=down_for, attempts=attempts,
                    summary=f"link {self.name} up again after {down_for} down ({attempts} attempts)",
                )  # fmt: skip
            await conn.closed.wait()
            return "served", conn.reason
        finally:
            conn.close(conn.reason or "session ended")
            if self._conn is conn:
                self._conn = None
            self._bad_pdus += conn.bad_pdus
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # Handlers still committing finish on their own; their answers die with the connection
            # and the SMSC delivers again. Only a stop cancels them (after waiting for them).
            if self._stopping:
                for task in conn.tasks:
                    task.cancel()

    def _probe(self) -> None:
        """An enquire_link for `session_held`, unless the link is stopping: it then has nothing to prove,
        and no request may follow the unbind that may already be on its way."""
        if not self._stopping and self._conn is not None:
            self._conn.probe()

    def _acked(self, sms: InboundSms, confirmed: bool) -> None:
        if self._events is not None:
            self._events.on_acked(self.name, sms, confirmed)

    async def _handle_inbound(self, item: InboundSms | DeliveryReport) -> Ack:
        assert self._events is not None
        if isinstance(item, DeliveryReport):
            return await self._events.on_report(self.name, item)
        return await self._events.on_deliver(self.name, item)
