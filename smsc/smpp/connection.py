"""One TCP session of `smsc.smpp.link.SmppLink`: the bytes and the protocol state that die with it.

`SmppConnection` frames PDUs from the stream, matches submit_sm_resp and generic_nack to outstanding
submits by sequence number (each with its own response timer; a submit past its timer still takes a
late answer for twice the link's grace, since the SMSC may well have it), answers enquire_link and an SMSC's
unbind, sends keep-alives on an idle link, and hands MOs and receipts to the link's handler, answering
deliver_sm only after the handler acknowledged. An MO's deliver_sm_resp counts as received once the
SMSC answered an enquire_link (or unbind) written after it (`smsc.base.MoAcks`). Nothing here
reconnects or counts outcomes: that is the link's. Sequence numbers come from the link, so that one
generator outlives reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from smpplib import command_codes
from smpplib import smpp as pdus
from smpplib.exceptions import UnknownCommandError

from smsc.base import Ack, DeliveryReport, InboundSms, MoAcks, Outcome, SubmitResult
from smsc.settings import LinkSettings
from smsc.smpp.codec import (
    ENQUIRE_LINK,
    MAX_PDU,
    UNBIND,
    PduError,
    decode_message_id,
    decode_sm,
    encode,
    generic_nack,
)
from smsc.smpp.pdu import (
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

log = structlog.get_logger(__name__)

UNBIND_WAIT = 2.0
DEFAULT_WINDOW = 10  # SMPP's customary window when the link's config sets none
_BODILESS = frozenset({"enquire_link", "enquire_link_resp", "unbind", "unbind_resp"})
_BIND_RESPS = frozenset({"bind_transceiver_resp", "bind_transmitter_resp", "bind_receiver_resp"})

InboundHandler = Callable[[InboundSms | DeliveryReport], Awaitable[Ack]]
AckedHandler = Callable[[InboundSms, bool], None]


class LinkDown(Exception):
    """The connection is unusable; it is closed and the link reconnects."""


class SmppConnection:
    """One connection's state; see the module docstring. All of it runs on the event loop."""

    def __init__(
        self,
        cfg: LinkSettings,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        seq: Sequences,
        on_inbound: InboundHandler,
        on_acked: AckedHandler | None = None,
    ) -> None:
        self.cfg, self.name = cfg, cfg.name
        self.reader, self.writer = reader, writer
        self.seq = seq
        self.on_inbound = on_inbound
        # MO acknowledgements not yet known to have reached the SMSC, and the `acks.count` mark of
        # each of our enquire_links and unbind written while some were waiting (by sequence number).
        self.acks = MoAcks(on_acked or (lambda _sms, _confirmed: None), self._prod)
        self.ack_marks: dict[int, int] = {}
        self.loop = asyncio.get_running_loop()
        self.last_rx = self.loop.time()
        self.pending: dict[int, tuple[asyncio.Future[SubmitResult], asyncio.TimerHandle]] = {}
        # Submits past their response timeout whose late answer is still wanted (see `_expire`).
        self.late: dict[int, tuple[asyncio.Future[SubmitResult | None], asyncio.TimerHandle]] = {}
        self.tasks: set[asyncio.Task[None]] = set()  # handlers of MOs and receipts not yet answered
        self.closed = asyncio.Event()
        self.reason = ""
        self.bind_seq: int | None = None
        self.bind_status: asyncio.Future[int | None] = self.loop.create_future()
        self.bound = False
        self.unbind_seq: int | None = None
        self.unbound = asyncio.Event()
        self.keepalive_seq: int | None = None
        self.keepalive = asyncio.Event()
        self.buf = bytearray()
        self.bad_pdus = 0
        self.unanswered_in_a_row = 0  # submits timed out since the last submit_sm_resp or nack

    def send(self, data: bytes) -> bool:
        if self.closed.is_set():
            return False
        self.writer.write(data)
        return True

    def send_submit(self, seq: int, data: bytes) -> asyncio.Future[SubmitResult]:
        """Write one encoded submit_sm; the future resolves on its answer, a timeout or the close."""
        future: asyncio.Future[SubmitResult] = self.loop.create_future()
        if self.closed.is_set():
            future.set_result(SubmitResult(Outcome.TEMPORARY, error=self.reason or "connection closed"))
            return future
        timer = self.loop.call_later(self.cfg.response_timeout_seconds, self._expire, seq)
        self.pending[seq] = (future, timer)
        self.send(data)
        return future

    def close(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.reason = reason
        self.closed.set()
        self.bound = False
        pending, self.pending = self.pending, {}
        for future, timer in pending.values():
            timer.cancel()
            if not future.done():  # written (`send_submit` writes at once): the SMSC may have it
                future.set_result(SubmitResult(Outcome.TEMPORARY, error=reason, written=True))
        for seq in list(self.late):  # their answers died with the connection
            self._settle_late(seq, None)
        if not self.bind_status.done():
            self.bind_status.set_result(None)
        self.unbound.set()
        self.writer.close()
        self.ack_marks.clear()
        self.acks.closed()

    async def unbind(self) -> None:
        if not self.bound:
            return
        self.unbind_seq = self.seq.next_sequence()
        self._mark(self.unbind_seq)
        self.send(encode(UNBIND, self.unbind_seq))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.unbound.wait(), min(UNBIND_WAIT, self.cfg.response_timeout_seconds))
        log.info("smpp.unbound", link=self.name, answered=self.unbind_seq is None)

    async def keepalive_loop(self) -> None:
        idle = self.cfg.enquire_link_seconds
        loop = asyncio.get_running_loop()
        while not self.closed.is_set():
            wait = self.last_rx + idle - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self.keepalive.clear()
            self.keepalive_seq = self.seq.next_sequence()
            self._mark(self.keepalive_seq)
            self.send(encode(ENQUIRE_LINK, self.keepalive_seq))
            try:
                await asyncio.wait_for(self.keepalive.wait(), self.cfg.response_timeout_seconds)
            except TimeoutError:
                self.close("no enquire_link_resp")
                return

    def _mark(self, seq: int) -> None:
        """Our request `seq` is written now: its answer confirms the MO acknowledgements before it."""
        if self.acks.waiting:
            self.ack_marks[seq] = self.acks.count

    def _prod(self) -> None:
        """An enquire_link after MO acknowledgements, so that its answer confirms them within a round
        trip; none while stopping (the unbind confirms them) or once the connection is gone."""
        if self.closed.is_set() or not self.bound or self.unbind_seq is not None:
            return
        seq = self.seq.next_sequence()
        self._mark(seq)
        self.send(encode(ENQUIRE_LINK, seq))

    def _expire(self, seq: int) -> None:
        """No answer in time. The submit is on the wire and the SMSC may have taken it: with a grace,
        the submit resolves UNANSWERED and its late answer is still taken, so that the dispatcher
        can settle the part instead of putting a second copy on the phone."""
        entry = self.pending.pop(seq, None)
        if entry is None or entry[0].done():
            return
        grace = self.cfg.late_answer_grace_seconds
        log.warning("smpp.response_timeout", link=self.name, seq=seq, late_answer_wait=grace)
        error = "no submit_sm_resp in time"
        self.unanswered_in_a_row += 1
        if grace <= 0 or self.closed.is_set():
            entry[0].set_result(SubmitResult(Outcome.TEMPORARY, error=error))
        else:
            late: asyncio.Future[SubmitResult | None] = self.loop.create_future()
            # Answers are taken for twice the grace: one in the second half still stops a re-send
            # that waits for its turn, or at least names the duplicate.
            self.late[seq] = (late, self.loop.call_later(2 * grace, self._settle_late, seq, None))
            entry[0].set_result(SubmitResult(Outcome.UNANSWERED, error=error, late=late, retry_after=grace))
        # A whole window of submits unanswered: the session takes keep-alives but not SMS (a stuck
        # front end), and every place given back would only put one more submit on top of those the
        # SMSC still holds. A new session is the cure, as Kannel's wait-ack-expire does it.
        limit = self.cfg.window or DEFAULT_WINDOW
        if self.unanswered_in_a_row >= limit and not self.closed.is_set():
            self.close(f"no submit_sm_resp to {self.unanswered_in_a_row} submits in a row")

    def _settle_late(self, seq: int, result: SubmitResult | None) -> None:
        entry = self.late.pop(seq, None)
        if entry is None:
            return
        future, timer = entry
        timer.cancel()
        if not future.done():
            future.set_result(result)

    # --- reading ----------------------------------------------------------------------------------------

    async def read_loop(self) -> None:
        reason = "closed by peer"
        loop = asyncio.get_running_loop()
        try:
            while chunk := await self.reader.read(65536):
                self.buf += chunk
                self.last_rx = loop.time()
                self._frames()
        except LinkDown as exc:
            reason = str(exc)
        except OSError as exc:
            reason = f"read failed: {exc}"
        except Exception:
            log.exception("smpp.reader_failed", link=self.name)
            reason = "reader failed"
        finally:
            self.close(reason)

    def _frames(self) -> None:
        buf = self.buf
        while len(buf) >= 4 and not self.closed.is_set():
            (length,) = struct.unpack_from(">I", buf)
            if not 16 <= length <= MAX_PDU:
                # No way to find the next PDU boundary in a byte stream: say so and start afresh.
                self.bad_pdus += 1
                log.error("smpp.garbage", link=self.name, length=length, head=bytes(buf[:16]).hex())
                self.send(generic_nack(0, ESME_RINVCMDLEN))
                raise LinkDown("unframeable bytes from peer")
            if len(buf) < length:
                return
            raw = bytes(buf[:length])
            del buf[:length]
            self._dispatch(raw)

    def _dispatch(self, raw: bytes) -> None:
        _, command_id, status, seq = struct.unpack_from(">IIII", raw)
        name = COMMAND_NAMES.get(command_id)
        is_request = not command_id & 0x80000000
        if not is_request and self.ack_marks:  # any answer to it proves the SMSC read what came before
            mark = self.ack_marks.pop(seq, None)
            if mark is not None:
                self.acks.answered(mark)
                # Requests written before this one can confirm nothing more (one left unanswered).
                self.ack_marks = {s: m for s, m in self.ack_marks.items() if m > mark}
        if name is None:
            self.bad_pdus += 1
            log.warning("smpp.unknown_command", link=self.name, command_id=f"0x{command_id:08X}", seq=seq)
            if is_request:
                self.send(generic_nack(seq, ESME_RINVCMDID))
            return
        if name == "submit_sm_resp":
            self._on_submit_resp(seq, status, raw)
            return
        if name == "generic_nack":
            self._on_nack(seq, status)
            return
        pdu: Any = None
        if name == "deliver_sm":
            pdu = decode_sm(raw)
            if isinstance(pdu, PduError):
                self._bad_pdu(name, seq, pdu.reason, pdu.status)
                return
        elif name not in _BODILESS:  # binds' responses, data_sm and the rare commands
            try:
                pdu = pdus.parse_pdu(raw, client=self.seq, allow_unknown_opt_params=True)
            except UnknownCommandError:  # an SMPP command smpplib has no class for, e.g. cancel_sm
                log.warning("smpp.unsupported_command", link=self.name, command=name, seq=seq)
                if is_request:
                    self.send(generic_nack(seq, ESME_RINVCMDID))
                return
            except Exception as exc:
                self._bad_pdu(name, seq, repr(exc), ESME_RUNKNOWNERR if is_request else None)
                return
        if name in _BIND_RESPS:
            if seq == self.bind_seq:
                self._on_bind_resp(status)
        elif name == "enquire_link":
            self._send_resp("enquire_link_resp", seq, 0)
        elif name == "enquire_link_resp":
            if seq == self.keepalive_seq:
                self.keepalive_seq = None
                self.keepalive.set()
        elif not self.bound and is_request:
            self.send(generic_nack(seq, ESME_RINVBNDSTS))
        elif name in ("deliver_sm", "data_sm"):
            self._on_deliver(pdu, name, seq)
        elif name == "unbind":
            self._send_resp("unbind_resp", seq, 0)
            log.warning("smpp.unbind_by_smsc", link=self.name)
            raise LinkDown("unbind from SMSC")
        elif name == "unbind_resp":
            if seq == self.unbind_seq:
                self.unbind_seq = None
                self.unbound.set()
        elif name == "alert_notification":
            log.info("smpp.alert_notification", link=self.name)
        elif is_request:
            log.warning("smpp.unsupported_command", link=self.name, command=name, seq=seq)
            self.send(generic_nack(seq, ESME_RINVCMDID))
        else:
            log.info("smpp.unexpected_response", link=self.name, command=name, seq=seq)

    def _on_bind_resp(self, status: int) -> None:
        # Bound from this PDU on, not from when the session task next runs: a deliver_sm in the
        # same read as the bind_transceiver_resp is served, not refused as "not bound".
        self.bound = status == 0
        if not self.bind_status.done():
            self.bind_status.set_result(status)

    def _send_resp(self, name: str, seq: int, status: int) -> None:
        self.send(encode(command_codes.commands[name], seq, status))

    def _bad_pdu(self, name: str, seq: int, error: str, nack_status: int | None) -> None:
        """Count and log an unreadable PDU; a request is answered with `nack_status`."""
        self.bad_pdus += 1
        log.warning("smpp.bad_pdu", link=self.name, command=name, seq=seq, error=error)
        if nack_status is not None:
            self.send(generic_nack(seq, nack_status))

    def _resolve(self, seq: int, result: SubmitResult) -> bool:
        entry = self.pending.pop(seq, None)
        if entry is None:
            return False
        future, timer = entry
        timer.cancel()
        if not future.done():
            future.set_result(result)
        return True

    def _on_nack(self, seq: int, status: int) -> None:
        log.warning("smpp.generic_nack", link=self.name, seq=seq, status=status_text(status))
        outcome = classify_status(status) if status else Outcome.TEMPORARY
        result = SubmitResult(outcome, error="generic_nack " + status_text(status))
        if self._resolve(seq, result):
            self.unanswered_in_a_row = 0
            return
        if seq in self.late:
            self.unanswered_in_a_row = 0
            self._settle_late(seq, result)
            return
        if seq == self.keepalive_seq:
            self.keepalive_seq = None
            self.keepalive.set()
        elif seq == self.bind_seq and not self.bind_status.done():
            self.bind_status.set_result(status or ESME_RUNKNOWNERR)

    def _on_submit_resp(self, seq: int, status: int, raw: bytes) -> None:
        self.unanswered_in_a_row = 0
        late = seq not in self.pending
        if late and seq not in self.late:
            log.warning("smpp.unexpected_submit_resp", link=self.name, seq=seq, status=status_text(status))
            return
        if status:
            result = SubmitResult(classify_status(status), error=status_text(status))
        else:
            mid = normalise_message_id(decode_message_id(raw), self.cfg.message_id_type, receipt=False)
            if not mid:
                log.warning("smpp.empty_message_id", link=self.name, seq=seq)
            result = SubmitResult(Outcome.ACCEPTED, message_id=mid or None)
        if late:
            log.warning("smpp.late_submit_resp", link=self.name, seq=seq, status=status_text(status))
            self._settle_late(seq, result)
        else:
            self._resolve(seq, result)

    def _on_deliver(self, pdu: Any, name: str, seq: int) -> None:
        resp = name + "_resp"
        if self.unbind_seq is not None:  # stopping: the SMSC must keep it and deliver it again later
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
        task = asyncio.create_task(self._answer(item, resp, seq, self.loop.time()))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, item: InboundSms | DeliveryReport, resp: str, seq: int, arrived: float) -> None:
        status = ESME_RX_T_APPN
        try:
            if await self.on_inbound(item) is Ack.OK:
                status = 0
        except Exception:
            log.exception("smpp.handler_failed", link=self.name, pdu=resp.removesuffix("_resp"))
        # A closing transport drops what is written to it without a word.
        closing = self.writer.is_closing()
        written = self.send(encode(command_codes.commands[resp], seq, status)) and not closing
        if status == 0 and isinstance(item, InboundSms):
            self.acks.written(item, arrived=arrived, ok=written)
