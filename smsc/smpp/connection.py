"""One TCP session of `smsc.smpp.link.SmppLink`: the bytes and the protocol state that die with it.

`SmppConnection` frames PDUs from the stream (`smsc.smpp.framing`), hands submit_sm_resp and
generic_nack to its outstanding submits (`smsc.smpp.submits`: response timers and late answers), answers
enquire_link and an SMSC's unbind, sends keep-alives on an idle link, and hands MOs and receipts to the
link's handler, answering deliver_sm only after the handler acknowledged (`smsc.smpp.deliveries`, which
also bounds how many wait for it: the reader waits at the bound). An MO's deliver_sm_resp counts as
received once the SMSC answered an enquire_link (or unbind) written after it (`smsc.smpp.ackmarks`).
Nothing here reconnects or counts outcomes: that is the link's. Sequence numbers come from the link, so
that one generator outlives reconnects. A peer that floods requests and reads none of our answers is
bounded by `smsc.backpressure`; the warnings a peer can provoke at will go through a `LogThrottle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from typing import Any

import structlog
from smpplib import command_codes
from smpplib import smpp as pdus
from smpplib.exceptions import UnknownCommandError

from smsc.backpressure import overfull
from smsc.base import InboundSms, MoAcks, OutboundSms, Outcome, SubmitResult
from smsc.logthrottle import LogThrottle
from smsc.settings import LinkSettings
from smsc.smpp.ackmarks import AckMarks
from smsc.smpp.codec import (
    ENQUIRE_LINK,
    UNBIND,
    PduError,
    decode_data_sm,
    decode_sm,
    encode,
    generic_nack,
)
from smsc.smpp.deliveries import Deliveries, InboundHandler
from smsc.smpp.enquiries import Enquiries
from smsc.smpp.framing import Held, LinkDown, PduReader
from smsc.smpp.pdu import (
    COMMAND_NAMES,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RUNKNOWNERR,
    ESME_RX_T_APPN,
    Sequences,
    status_text,
)
from smsc.smpp.submits import Submits
from smsc.stalls import ReadPause, ResponseTimer

log = structlog.get_logger(__name__)

UNBIND_WAIT = 2.0
_BODILESS = frozenset({"enquire_link", "enquire_link_resp", "unbind", "unbind_resp"})
_BIND_RESPS = frozenset({"bind_transceiver_resp", "bind_transmitter_resp", "bind_receiver_resp"})
_BIND_RESP_IDS = frozenset(command_codes.commands[name] for name in _BIND_RESPS)  # stray once bound
# The answers to the requests a bound session writes: only they can say that the SMSC lost our bind.
_OUR_ANSWER_IDS = frozenset(
    command_codes.commands[name] for name in ("submit_sm_resp", "generic_nack", "enquire_link_resp")
)

AckedHandler = Callable[[InboundSms, bool], None]


class SmppConnection(PduReader):
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
        # MO acknowledgements not yet known to have reached the SMSC, and the requests that confirm them.
        self.acks = MoAcks(on_acked or (lambda _sms, _confirmed: None), self._prod)
        self.ack_marks = AckMarks(self.acks)
        self.loop = asyncio.get_running_loop()
        self.last_rx = self.loop.time()
        self.closed = asyncio.Event()
        self.throttle = LogThrottle(log)
        self.deliveries = Deliveries(cfg, on_inbound, self.acks, self.send, self.throttle)
        self.deliveries.on_answered = self.served
        self.tasks = self.deliveries.tasks  # handlers of MOs and receipts not yet answered
        self.held = Held()
        self.pause = ReadPause(self.loop)
        self.submits = Submits(cfg, self.closed, self.close, self.throttle, self.pause)
        self.reason = ""
        self.bind_seq: int | None = None
        self.bind_status: asyncio.Future[int | None] = self.loop.create_future()
        self.bound = False
        self.unbind_seq: int | None = None
        self.unbound = asyncio.Event()
        self.peer_unbound_until: float | None = None  # the SMSC's unbind came: its answers read until then
        self.keepalive_seq: int | None = None
        self.keepalive = asyncio.Event()
        self.enquiries = Enquiries()
        # Set by each answer to a request of ours once bound (`smsc.outage.session_held`): an SMSC that
        # takes the bind and then answers nothing has not come up.
        self.answered = asyncio.Event()
        self.buf = bytearray()
        self.bad_pdus = 0

    def send(self, data: bytes) -> bool:
        """Hand the bytes to the socket; False when they cannot reach the wire (the connection is gone).

        A peer's reset closes the transport before the read loop has seen it: uvloop then raises on
        the write, which reached the dispatcher as an internal error and put the part on hold until
        an admin retried it. It is the connection lost, as the read loop would have said a moment later.
        """
        if self.closed.is_set():
            return False
        if self.writer.is_closing():
            self.close("connection lost")
            return False
        try:
            self.writer.write(data)
        except (RuntimeError, ConnectionError) as exc:
            self.close(f"connection lost ({exc.__class__.__name__})")
            return False
        return True

    def send_submit(self, seq: int, data: bytes, sms: OutboundSms) -> asyncio.Future[SubmitResult]:
        """Write one encoded submit_sm; the future resolves on its answer, a timeout or the close."""
        if not self.send(data):  # closed, or its transport closing: the SMSC cannot have it
            future: asyncio.Future[SubmitResult] = self.loop.create_future()
            future.set_result(SubmitResult(Outcome.TEMPORARY, error=self.reason or "connection closed"))
            return future
        return self.submits.expect(seq, sms.part_id, sms)  # no answer can be read before this step ends

    def close(self, reason: str, *, abort: bool = False, ours: bool = False) -> None:
        """End the connection; `abort` drops the bytes not yet written instead of waiting to flush
        them (a peer that does not read would keep the socket and its buffer for ever), as does any
        close with more of them than `smsc.backpressure` keeps, and an abort after a close. `ours`
        (or `abort`: only we abort): we end a session the SMSC kept (`Submits.ended_by_us`)."""
        if (ours or abort) and not self.closed.is_set():
            self.submits.ended_by_us = True
        if abort or overfull(self.writer):
            self.writer.transport.abort()
        if self.closed.is_set():
            return
        self.reason = reason
        self.closed.set()
        self.bound = False
        self.submits.close(reason)
        self.held.clear()
        if not self.bind_status.done():
            self.bind_status.set_result(None)
        self.unbound.set()
        self.writer.close()
        self.ack_marks.clear()
        self.acks.closed()
        self.throttle.flush()

    async def unbind(self) -> None:
        if not self.bound:
            return
        self.unbind_seq = self.seq.next_sequence()
        self.ack_marks.mark(self.unbind_seq)
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
            self._enquire(self.keepalive_seq)
            if not await self._keepalive_answered():
                self.close("no enquire_link_resp", ours=True)
                return

    async def _keepalive_answered(self) -> bool:
        """The enquire_link's answer within the response timeout, timed as a submit's is: not while
        the reader is paused, when it may wait behind the requests held (`smsc.stalls`)."""
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            self.keepalive.set()

        timer = ResponseTimer(self.loop, self.cfg.response_timeout_seconds, expire, self.pause)
        try:
            await self.keepalive.wait()
        finally:
            timer.cancel()
        return not expired

    def probe(self) -> bool:
        """An enquire_link now, for `smsc.outage.session_held`: a session is up once the SMSC answered."""
        return self._prod()

    def _prod(self) -> bool:
        """An enquire_link after MO acknowledgements, so that its answer confirms them within a round
        trip; none once the connection is gone, nor after our unbind: no request may follow it, and
        its unbind_resp confirms the acknowledgements written before it. False when none was written."""
        if self.closed.is_set() or not self.bound or self.unbind_seq is not None:
            return False
        return self._enquire(self.seq.next_sequence())

    def _enquire(self, seq: int) -> bool:
        self.ack_marks.mark(seq)
        self.enquiries.sent(seq)
        return self.send(encode(ENQUIRE_LINK, seq))

    # --- what was read (`smsc.smpp.framing` frames it) ----------------------------------------------

    def _frames(self) -> None:
        """Frame and serve what was read. A stream no PDU can be framed from (a length out of bounds)
        is the peer speaking garbage, no submit's doing: the close that follows blames none of them
        (`SubmitResult.lost_behind` None), as a bind lost does (`_dispatch`). Only a session the SMSC
        drops without a word (EOF, a reset) blames its oldest unanswered submit."""
        try:
            super()._frames()
        except LinkDown:
            self.submits.ended_by_us = True
            raise

    def _dispatch(self, raw: bytes) -> None:
        _, command_id, status, seq = struct.unpack_from(">IIII", raw)
        self._route(raw, command_id, status, seq)
        if status == ESME_RINVBNDSTS and self.bound and command_id in _OUR_ANSWER_IDS:
            # An answer to one of our requests saying "incorrect bind status" (submit_sm_resp, generic_nack,
            # enquire_link_resp) means the SMSC no longer holds our session: on this connection every
            # part would be refused the same way, so it goes and the link binds again, as the CIMD2
            # link does on its "unexpected operation". The answer itself was routed first, so its
            # part is settled as TEMPORARY rather than swept up by the close. Any other response is
            # no answer of ours (a stray bind_resp, a command id SMPP does not define): logged by
            # `_route` and ignored, it dropped every bound session with "command": null.
            log.warning("smpp.bind_lost", link=self.name, command=COMMAND_NAMES.get(command_id))
            self.submits.ended_by_us = True  # our close: the submits on the wire are not to blame
            raise LinkDown("SMSC answered ESME_RINVBNDSTS: bind lost")

    def _route(self, raw: bytes, command_id: int, status: int, seq: int) -> None:
        name = COMMAND_NAMES.get(command_id)
        is_request = not command_id & 0x80000000
        if not is_request:
            self.ack_marks.answered(seq)
            if self.bound and command_id not in _BIND_RESP_IDS:
                self.answered.set()
        if name is None:
            self.bad_pdus += 1
            self.throttle.warning(
                "smpp.unknown_command", link=self.name, command_id=f"0x{command_id:08X}", seq=seq
            )
            if is_request:
                self.send(generic_nack(seq, ESME_RINVCMDID))
            return
        if name == "submit_sm_resp":
            self.submits.on_resp(seq, status, raw)
            return
        if name == "generic_nack":
            self._on_nack(seq, status)
            return
        pdu: Any = None
        if name in ("deliver_sm", "data_sm"):
            # data_sm as strictly as deliver_sm: smpplib's lenient parse took a body of two octets, or a
            # payload claiming more octets than came, for an empty or cut MO and answered it OK.
            pdu = decode_sm(raw) if name == "deliver_sm" else decode_data_sm(raw)
            if isinstance(pdu, PduError):
                self._bad_pdu(name, seq, pdu.reason, pdu.status)
                return
        elif name not in _BODILESS and name not in _BIND_RESPS:  # the rare commands
            try:
                pdu = pdus.parse_pdu(raw, client=self.seq, allow_unknown_opt_params=True)
            except UnknownCommandError:  # an SMPP command smpplib has no class for, e.g. cancel_sm
                self.throttle.warning("smpp.unsupported_command", link=self.name, command=name, seq=seq)
                if is_request:
                    self.send(generic_nack(seq, ESME_RINVCMDID))
                return
            except Exception as exc:
                self._bad_pdu(name, seq, repr(exc), ESME_RUNKNOWNERR if is_request else None)
                return
        if name in _BIND_RESPS:
            self._on_bind_resp(name, seq, status)
        elif name == "enquire_link":
            self._send_resp("enquire_link_resp", seq, 0)
        elif name == "enquire_link_resp":
            # One numbered 0 (or by the SMSC's own count) is said, and answers our oldest (`answer_of`).
            if (ours := self.enquiries.answer_of(seq)) != seq:
                self.throttle.info("smpp.unexpected_response", link=self.name, command=name, seq=seq,
                                   status=status_text(status))  # fmt: skip
            self._enquiry_answered(ours, seq)
        elif self.peer_unbound_until is not None and is_request:
            self._after_unbind(name, seq)
        elif not self.bound and is_request:
            self._not_bound(name, seq)
        elif name in ("deliver_sm", "data_sm"):
            self._on_deliver(pdu, name, seq)
        elif name == "unbind":
            self._on_unbind(seq)
        elif name == "unbind_resp":
            if seq == self.unbind_seq:
                self.unbind_seq = None
                self.unbound.set()
        elif name == "alert_notification":
            self.throttle.info("smpp.alert_notification", link=self.name)
        elif is_request:
            self.throttle.warning("smpp.unsupported_command", link=self.name, command=name, seq=seq)
            self.send(generic_nack(seq, ESME_RINVCMDID))
        else:
            self.throttle.info("smpp.unexpected_response", link=self.name, command=name, seq=seq)

    def _on_unbind(self, seq: int) -> None:
        """The SMSC ends the session. Answers to our submits may follow its unbind (in the same read,
        or the next): they are taken until it closes, for `UNBIND_WAIT` at most, rather than thrown
        away and their parts sent again as possible duplicates. No submit is written meanwhile."""
        self.answer_unbind(seq)  # once the deliveries before it are answered
        self.submits.unbound_by_smsc()
        self.bound = False
        wait = min(UNBIND_WAIT, self.cfg.response_timeout_seconds)
        self.peer_unbound_until = self.loop.time() + wait

    def _after_unbind(self, name: str, seq: int) -> None:
        """A request after the SMSC's unbind: a delivery is refused, so that it keeps it for the next
        session; the connection is closing, not a bind lost (`_not_bound`)."""
        if name in ("deliver_sm", "data_sm"):
            self._send_resp(name + "_resp", seq, ESME_RX_T_APPN)
        elif name == "unbind":  # repeated: answered with the first, once the deliveries before it are
            self.answer_unbind(seq)
        else:
            self.send(generic_nack(seq, ESME_RINVBNDSTS))

    def _not_bound(self, name: str, seq: int) -> None:
        """A request before our bind is answered: refused, and said in the log. On a connection once
        bound it cannot happen (`_on_bind_resp` sets `bound` once); should it, the session is as good
        as lost and the link binds again rather than refuse every MO for ever."""
        self.throttle.warning("smpp.refused_not_bound", link=self.name, command=name, seq=seq,
                              status="ESME_RINVBNDSTS")  # fmt: skip
        self.send(generic_nack(seq, ESME_RINVBNDSTS))
        if self.bind_status.done() and self.bind_status.result() == 0:
            self.submits.ended_by_us = True
            raise LinkDown("bind lost on a live connection")

    def _on_bind_resp(self, name: str, seq: int, status: int) -> None:
        """The header's status alone (smpplib refused a body with a NUL of padding or an odd version TLV,
        and the link stayed down). While our bind waits, one with another number (an SMSC answering 0) is
        its answer; a stray one undoes nothing. Bound from here: a deliver_sm in the same read is served."""
        if self.bind_seq is None or self.bind_status.done():
            self.throttle.info("smpp.unexpected_response", link=self.name, command=name, seq=seq,
                               status=status_text(status))  # fmt: skip
            return
        if seq != self.bind_seq:
            log.warning("smpp.bind_resp_sequence", link=self.name, seq=seq, expected=self.bind_seq)
        self.bound = status == 0
        self.bind_status.set_result(status)

    def _send_resp(self, name: str, seq: int, status: int) -> None:
        self.send(encode(command_codes.commands[name], seq, status))

    def _bad_pdu(self, name: str, seq: int, error: str, nack_status: int | None) -> None:
        """Count and log an unreadable PDU; a request is answered with `nack_status`."""
        self.bad_pdus += 1
        self.throttle.warning("smpp.bad_pdu", link=self.name, command=name, seq=seq, error=error)
        if nack_status is not None:
            self.send(generic_nack(seq, nack_status))

    def _on_nack(self, seq: int, status: int) -> None:
        ours = self.enquiries.answer_of(seq, stray=seq == 0)  # one numbered 0 names no request
        if not self.enquiries.refused(ours, self.name, status):  # not an enquire_link of ours refused
            self.throttle.warning("smpp.generic_nack", link=self.name, seq=seq, status=status_text(status))
        if ours is not None:
            self._enquiry_answered(ours, seq)
        elif (  # while binding, one numbered 0 (no enquire_link of ours waits) is the bind's refusal
            not self.submits.on_nack(seq, status)
            and seq in (self.bind_seq, 0)
            and not self.bind_status.done()
        ):
            self.bind_status.set_result(status or ESME_RUNKNOWNERR)

    def _enquiry_answered(self, ours: int | None, seq: int) -> None:
        if ours is not None:  # an answer `seq` to our enquire_link `ours`: it confirms the acks before it
            self.ack_marks.answered(ours)
        if self.keepalive_seq is not None and (ours == self.keepalive_seq or ours != seq):
            self.keepalive_seq = None
            self.keepalive.set()

    def _on_deliver(self, pdu: Any, name: str, seq: int) -> None:
        if self.unbind_seq is not None:  # stopping: the SMSC must keep it and deliver it again later
            self.deliveries.answer(name, seq, ESME_RX_T_APPN)
        elif not self.deliveries.take(pdu, name, seq):
            self.bad_pdus += 1
