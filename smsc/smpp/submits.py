"""The submit_sm written on one `smsc.smpp.connection.SmppConnection` until they are answered: each is
matched to its submit_sm_resp or generic_nack by sequence number and has its own response timer. A
submit past its timer still takes a late answer for twice the link's grace, since the SMSC may well
have it, and a whole window of them unanswered in a row ends the session. One its session ends
unanswered may still be answered by its receipt (`smsc.smpp.lostreceipts`). Kept apart from the
connection's PDU handling because these timers and late answers decide what the dispatcher does with
a part.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from functools import partial

import structlog

from smsc.base import OutboundSms, Outcome, SubmitResult
from smsc.lateholds import LateHold
from smsc.logthrottle import LogThrottle
from smsc.makers import maker
from smsc.pacing import MAX_THROTTLE_PAUSE, backoff
from smsc.settings import LinkSettings
from smsc.smpp.codec import MAX_MESSAGE_ID, decode_message_id
from smsc.smpp.lostreceipts import ReceiptGrace
from smsc.smpp.pdu import ESME_RINVEXPIRY, classify_status, normalise_message_id, status_text
from smsc.smpp.validityform import VALIDITY_AGAIN_SECONDS, ValidityForm
from smsc.stalls import ReadPause, ResponseTimer

log = structlog.get_logger(__name__)
# An accepted submit's answer, one an SMS, without the frozen dataclass's __init__ (`smsc.makers`):
# its outcome and message id, every other field at its default.
_accepted = maker(SubmitResult)
_ACCEPTED_REST = tuple(f.default for f in dataclasses.fields(SubmitResult)[2:])
assert [f.name for f in dataclasses.fields(SubmitResult)[:2]] == ["outcome", "message_id"]

DEFAULT_WINDOW = 10  # SMPP's customary window when the link's config sets none
ESME_RSUBMITFAIL = 0x45
# How often one part's 0x45 is read as a full window (a real overflow repeats for a part once or
# twice while the rate comes down); after that it is the SMSC's refusal of that SMS.
OVERFLOW_READINGS = 3
# Parts whose 0x45 was read as a full window, kept at most: one that never comes back to this link
# (sent by another, expired, its next submit unanswered) is forgotten with the oldest. The same bound
# holds the parts answered ESME_RMSGQFUL (`QueueFull`).
OVERFLOWS_KEPT = 1000
ESME_RMSGQFUL = 0x14
_UNSEEN = (-1, -1, 0)  # `QueueFull.parts`: no 0x14 yet for the part
# A 0x14 that may be the SMSC's queue or the phone's (`QueueFull`): the part is retried, uncounted,
# after this wait, doubling with each such reading up to the longest throttle pause.
UNSURE_FIRST_SECONDS = 1.0


class QueueFull:
    """Whose queue an ESME_RMSGQFUL (0x14) speaks of: the SMSC's, or one phone's store-and-forward queue.

    protocols.md 2.8 reads it as ESME_RTHROTTLED (Kannel, vumi), and so it is at a part's first: the
    link pauses and slows down. But an SMSC also says it of one phone (off for days, its queue full)
    while taking every other SMS: read as a throttle each time, that one phone paused the link and
    halved its rate at each of its retries, for its whole validity, and the link went at 1-2 SMS/s.
    A part answered 0x14 again when the SMSC accepted other submits since its last 0x14 is that
    phone's: its own temporary failure (back-off, counted attempts), the link left alone; once the
    phone's, so it stays for that part until it is answered otherwise. When the SMSC throttled others
    since and took none, it is the SMSC's queue: a throttle again. When it answered nothing else
    meanwhile (the part alone on the link, the one submit a pause lets out), either may be full: the
    part is retried without counting an attempt, after a wait that doubles up to MAX_THROTTLE_PAUSE,
    and the link is neither paused nor slowed. Read as the phone's, a full SMSC queue with one SMS
    waiting cost it counted attempts, a 15-minute back-off and a hold after some 10 hours; read as a
    throttle, that one phone took an idle link down to its slowest rate. Only a refusal that says
    something new of the SMSC counts as others throttled (`throttled`): a 0x58, a 0x45 for a full
    window, a part's first 0x14; not a part's repeated one. Counting those, SMS to two or more full
    phones with nothing else to send each took the others' repeats for the SMSC throttling: the link
    stayed paused and at its slowest rate while they retried, and the SMS arriving later met it so. A
    throttle more for each first 0x14 of another answered since its last, and they retry at their own
    pace, as one alone does. The link's, kept across its connections."""

    def __init__(self) -> None:
        # Submits the link's SMSC accepted, and those it throttled (0x58, 0x45 for a full window, a
        # part's first 0x14: a repeated one is no news of the SMSC).
        self.accepted = self.throttled = 0
        # part id -> (`accepted`, `throttled`, uncertain readings in a row) at its last 0x14, or None
        # once read as its phone's.
        self.parts: OrderedDict[int, tuple[int, int, int] | None] = OrderedDict()

    def outcome(self, part: int) -> tuple[Outcome, float]:
        """A 0x14 to `part`: THROTTLED (the SMSC's queue), TEMPORARY (that phone's), or TEMPORARY with
        the wait of an uncounted retry (`SubmitResult.retry_after`) when it cannot be told which."""
        seen = self.parts.pop(part, _UNSEEN) if part else _UNSEEN
        wait = 0.0
        kept: tuple[int, int, int] | None
        if seen is None or (seen is not _UNSEEN and self.accepted > seen[0]):
            outcome, kept = Outcome.TEMPORARY, None
        elif seen is not _UNSEEN and self.throttled == seen[1]:
            outcome, kept = Outcome.TEMPORARY, (self.accepted, self.throttled, seen[2] + 1)
            wait = backoff(seen[2] + 1, UNSURE_FIRST_SECONDS, MAX_THROTTLE_PAUSE)
        else:
            self.throttled += seen is _UNSEEN
            outcome, kept = Outcome.THROTTLED, (self.accepted, self.throttled, 0)
        if part:
            self.parts[part] = kept
            if len(self.parts) > OVERFLOWS_KEPT:
                self.parts.popitem(last=False)
        return outcome, wait

    def read(self, part: int, status: int) -> tuple[Outcome, float]:
        """The outcome of a refusal `status` of `part`'s submit, in a submit_sm_resp or a generic_nack
        alike, and the wait of an uncounted retry (`outcome`)."""
        if status == ESME_RMSGQFUL:  # a stray's or a late one's part is 0: THROTTLED, nothing kept
            return self.outcome(part)
        outcome = classify_status(status) if status else Outcome.TEMPORARY
        self.answered(part, outcome)
        return outcome, 0.0

    def answered(self, part: int, outcome: Outcome) -> None:
        """A submit answered otherwise than 0x14: counted, and `part`'s readings forgotten."""
        self.accepted += outcome is Outcome.ACCEPTED
        self.throttled += outcome is Outcome.THROTTLED
        if self.parts:
            self.parts.pop(part, None)


class Submits:
    """One connection's outstanding submits; see the module docstring. `closed` and `close` are the
    connection's: a timer may still fire as it closes, and a stuck session is closed from here; so is
    its `throttle`, which a flood of stray answers goes through."""

    def __init__(
        self,
        cfg: LinkSettings,
        closed: asyncio.Event,
        close: Callable[[str], None],
        throttle: LogThrottle,
        pause: ReadPause | None = None,
    ) -> None:
        self.cfg, self.name = cfg, cfg.name
        self.pause = pause  # the connection's reader, whose pauses the response timers do not count
        self.throttle = throttle
        self.loop = asyncio.get_running_loop()
        self._closed, self._close = closed, close
        self.pending: dict[int, tuple[asyncio.Future[SubmitResult], ResponseTimer]] = {}
        # Submits past their response timeout whose late answer is still wanted (see `_expire`), with
        # the hold of their part's re-send while that answer may wait behind the paused reader.
        self.late: dict[int, tuple[asyncio.Future[SubmitResult | None], ResponseTimer, LateHold | None]] = {}
        self.unanswered_in_a_row = 0  # submits timed out since the last submit_sm_resp or nack
        self.part_of: dict[int, int] = {}  # seq → the part it carries, while unanswered
        # A session that did not end on a submit: we end it (its bind lost, keep-alives or a window of
        # submits unanswered, a peer not reading) or the SMSC ends it in words (an unbind, bytes no
        # PDU frames from). None is blamed for the loss (`SubmitResult.lost_behind` None), as a
        # CIMD2 response timeout blames none; only a drop without a word (EOF, a reset) blames one.
        self.ended_by_us = False
        # Parts whose 0x45 was read as a full window, and how often (the link's, kept across its
        # connections): past OVERFLOW_READINGS it is the SMSC's refusal. Else one SMS it refused for
        # good went again all day on a busy link, each refusal pausing it and halving its rate.
        self.overflowed: OrderedDict[int, int] = OrderedDict()
        self.queue_full = QueueFull()  # the link's too (`smsc.smpp.link`)
        self.validity = ValidityForm(cfg)  # the link's too
        # The link's submits awaiting a receipt since their session went (`smsc.smpp.lostreceipts`),
        # and each submit's SMS and when it was written (its clock), while unanswered.
        self.grace: ReceiptGrace | None = None
        self.sent: dict[int, tuple[OutboundSms, float]] = {}

    def unbound_by_smsc(self) -> None:
        """The SMSC ended the session with an unbind (answered, or held behind its MOs when it closed):
        an orderly end, its decision, not one SMS's doing: the submits it leaves unanswered are not
        to blame (`SubmitResult.lost_behind` None), as for a session we end ourselves. Else an SMSC
        unbinding twice with submits out (a restart, a failover) suspected the oldest of them of
        ending sessions: it backed off, and at the fifth it waited on hold for a human."""
        log.warning("smpp.unbind_by_smsc", link=self.name, unanswered=len(self.pending), late=len(self.late))
        self.ended_by_us = True

    def expect(self, seq: int, part: int = 0, sms: OutboundSms | None = None) -> asyncio.Future[SubmitResult]:
        """The future of submit `seq` (of part `part`, `sms`), just written; its timer starts now."""
        future: asyncio.Future[SubmitResult] = self.loop.create_future()
        # Not taken for silence when the loop itself stood still past it, nor while the reader was
        # paused with its answer maybe behind what it held (`smsc.stalls`).
        seconds = self.cfg.response_timeout_seconds
        timer = ResponseTimer(self.loop, seconds, partial(self._expire, seq), self.pause)
        self.pending[seq] = (future, timer)
        self.part_of[seq] = part
        if sms is not None and self.grace is not None:
            self.sent[seq] = (sms, self.grace.clock())
        return future

    def close(self, reason: str) -> None:
        pending, self.pending = self.pending, {}
        self.part_of.clear()
        # In the order written. Those past their timer, still waiting for a late answer, went before
        # all of them: the oldest unanswered submit (`SubmitResult.lost_behind` 0), suspected of
        # ending the session, is then none of these.
        earlier = len(self.late)
        grace, sent = self.grace, self.sent
        for seq, (future, timer) in pending.items():
            timer.cancel()
            if not future.done():  # written (the connection writes a submit at once): the SMSC may have it
                behind = None if self.ended_by_us else earlier
                lost = SubmitResult(Outcome.TEMPORARY, error=reason, written=True, lost_behind=behind)
                if grace is not None and seq in sent:  # its receipt may still say (`lostreceipts`)
                    lost = grace.lost(*sent[seq], lost)
                future.set_result(lost)
                earlier += 1
        for seq in list(self.late):  # no answer can come on the connection, but a receipt still may
            late, window, hold = self.late[seq]
            if grace is not None and seq in sent and grace.carry(*sent[seq], late):
                del self.late[seq]
                window.cancel()
                if hold is not None:
                    hold.end()
            else:
                self._settle_late(seq, None)
        sent.clear()
        if grace is not None:
            grace.look_back()

    def _expire(self, seq: int) -> None:
        """No answer in time. The submit is on the wire and the SMSC may have taken it: with a grace,
        the submit resolves UNANSWERED and its late answer is still taken, so that the dispatcher
        can settle the part instead of putting a second copy on the phone."""
        entry = self.pending.pop(seq, None)
        part = self.part_of.pop(seq, 0)
        if entry is None or entry[0].done():
            return
        grace = self.cfg.late_answer_grace_seconds
        log.warning("smpp.response_timeout", link=self.name, seq=seq, late_answer_wait=grace)
        error = "no submit_sm_resp in time"
        self.unanswered_in_a_row += 1
        if grace <= 0 or self._closed.is_set():
            # No late answer is waited for, but the SMSC may have it all the same.
            self.sent.pop(seq, None)
            entry[0].set_result(SubmitResult(Outcome.TEMPORARY, error=error, written=True))
        else:
            late: asyncio.Future[SubmitResult | None] = self.loop.create_future()
            # Answers are taken for twice the grace: one in the second half still stops a re-send
            # that waits for its turn, or at least names the duplicate. Not counting the time the
            # reader stood paused: the answer may be in TCP behind the MOs it left there, and thrown
            # away as a stray once read, its SMS went twice with no duplicate named.
            window = ResponseTimer(
                self.loop, 2 * grace, partial(self._settle_late, seq, None), self.pause, ends_session=False
            )
            # Nor is the grace before a re-send, which the dispatcher counts on the clock: while this
            # answer may still wait behind the paused reader the dispatcher keeps the part back, until
            # it is read, the session ends or the grace has run unpaused (`smsc.lateholds`).
            hold = LateHold(self.loop, part, grace, self.pause) if self.pause is not None else None
            self.late[seq] = (late, window, hold)
            entry[0].set_result(SubmitResult(Outcome.UNANSWERED, error=error, late=late, retry_after=grace))
        # A whole window of submits unanswered: the session takes keep-alives but not SMS (a stuck
        # front end), and every place given back would only put one more submit on top of those the
        # SMSC still holds. A new session is the cure, as Kannel's wait-ack-expire does it.
        limit = self.cfg.window or DEFAULT_WINDOW
        if self.unanswered_in_a_row >= limit and not self._closed.is_set():
            self.ended_by_us = True
            self._close(f"no submit_sm_resp to {self.unanswered_in_a_row} submits in a row")

    def _settle_late(self, seq: int, result: SubmitResult | None) -> None:
        entry = self.late.pop(seq, None)
        self.sent.pop(seq, None)
        if entry is None:
            return
        future, timer, hold = entry
        timer.cancel()
        if hold is not None:
            hold.end()
        if not future.done():
            future.set_result(result)

    def _resolve(self, seq: int, result: SubmitResult) -> bool:
        entry = self.pending.pop(seq, None)
        self.sent.pop(seq, None)
        if entry is None:
            return False
        future, timer = entry
        timer.cancel()
        if not future.done():
            future.set_result(result)
        return True

    def on_nack(self, seq: int, status: int) -> bool:
        """A generic_nack: True when it answered one of the submits. Its 0x62 is read as a submit_sm_resp's:
        an SMSC nacking the validity form it does not take bounced every SMS since relative is the default."""
        again = status == ESME_RINVEXPIRY and (seq in self.pending or seq in self.late)
        part = self.part_of.pop(seq, 0)
        outcome, wait = self.queue_full.read(part, status)
        error = "generic_nack " + status_text(status)
        if again and self.validity.refused(seq, part, [*self.pending, *self.late]):
            outcome, wait = Outcome.TEMPORARY, VALIDITY_AGAIN_SECONDS  # again, in the other form
            error += self._validity_again()
        result = SubmitResult(outcome, error=error, retry_after=wait)
        if self._resolve(seq, result):
            self.unanswered_in_a_row = 0
        elif seq in self.late:
            self.unanswered_in_a_row = 0
            self._settle_late(seq, result)
        else:
            return False
        if outcome is not Outcome.THROTTLED:
            self.overflowed.pop(part, None)
        return True

    def on_resp(self, seq: int, status: int, raw: bytes) -> None:
        late = seq not in self.pending
        if late and seq not in self.late:
            # Not one of ours: it says nothing of whether the SMSC still answers our submits (a stuck
            # session answering strays only must still be ended).
            self.throttle.warning(
                "smpp.unexpected_submit_resp", link=self.name, seq=seq, status=status_text(status)
            )
            return
        self.unanswered_in_a_row = 0
        part = self.part_of.pop(seq, 0)
        readings = self.overflowed.get(part, 0)
        if status == ESME_RSUBMITFAIL and not late and len(self.pending) > 1 and readings < OVERFLOW_READINGS:
            # Some SMSCs answer a submit beyond their own window (smaller than ours) with 0x45
            # instead of ESME_RTHROTTLED (protocols.md 2.8). With others of ours still unanswered it
            # is read so, a few times per part: the part waits its turn and the link slows down.
            # Alone on the wire, or once more, it is the permanent refusal it says.
            self.overflowed[part] = readings + 1
            self.overflowed.move_to_end(part)
            if len(self.overflowed) > OVERFLOWS_KEPT:
                self.overflowed.popitem(last=False)
            result = SubmitResult(Outcome.THROTTLED, error=status_text(status) + " with a full window")
            self.queue_full.answered(part, Outcome.THROTTLED)
        elif status:
            outcome, wait = self.queue_full.read(part, status)
            error = status_text(status)
            if status == ESME_RINVEXPIRY and self.validity.refused(seq, part, [*self.pending, *self.late]):
                outcome, wait = Outcome.TEMPORARY, VALIDITY_AGAIN_SECONDS  # again, in the other form
                error += self._validity_again()
            result = SubmitResult(outcome, error=error, retry_after=wait)
        else:
            self.queue_full.answered(part, Outcome.ACCEPTED)
            self.validity.accepted(seq)
            given = decode_message_id(raw)
            if len(given) > MAX_MESSAGE_ID:
                # Past SMPP 3.4's bound it is no id (`codec.MAX_MESSAGE_ID`): as with an empty one, the
                # part is accepted with nothing to match a receipt to, rather than stored with 60 KB.
                self.throttle.warning("smpp.overlong_message_id", link=self.name, seq=seq, length=len(given))
                mid = ""
            else:
                mid = normalise_message_id(given, self.cfg.message_id_type, receipt=False)
                if not mid:
                    log.warning("smpp.empty_message_id", link=self.name, seq=seq)
            if self.grace is not None and (sent := self.sent.get(seq)) is not None:
                self.grace.accepted(sent[0], mid or None, sent[1])  # its receipts: no lost submit's
            result = _accepted(Outcome.ACCEPTED, mid or None, *_ACCEPTED_REST)
        if self.overflowed and result.outcome is not Outcome.THROTTLED:
            self.overflowed.pop(part, None)  # its end, one way or the other
        if late:
            log.warning("smpp.late_submit_resp", link=self.name, seq=seq, status=status_text(status))
            self._settle_late(seq, result)
        else:
            self._resolve(seq, result)

    def _validity_again(self) -> str:
        if self.validity.relative:
            return " to an absolute validity, on trial: sent again with a relative one"
        return " to a relative validity: sent again with an absolute one"
