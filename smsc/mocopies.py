"""Which one-part MO read on one connection is the SMSC's re-send of one read there before it, and which
a new SMS of the same text (`smsc.base.MoAcks` keeps one `Copies` for its connection).

An SMSC re-sends an MO when our answer did not come within its own timeout: with the sequence number
it gave it (SMPP allows no two outstanding requests of one number, so a second one is that request
again) or with a new one, but only while our answer to the first had not been written, or late. Either
is the same SMS, acknowledged and not mailed again (`resent`): taken for new, a premium vote queued
behind a flood (its answer written 13 s late) was charged twice when its SMSC re-sent it after 3 s.
The number proves a re-send only while that request may still be outstanding for the SMSC: our answer
unwritten, late, or not yet confirmed (it answered nothing we wrote after it, `MoAcks`). Once it read
our answer in time the number is free again, and an SMSC that numbers its requests from a small
counter gives it to the phone's next SMS: the same vote 3 s on, under the number of the first, was
recorded as a duplicate, the phone charged and the vote never billed.
An identical MO read after the first's answer was written in time, or read together with the first
(an SMSC flushing two votes the phone sent while the link was down), is a new SMS (`repeated`),
however unconfirmed the first's answer is: the SMSC waits for it, and delivers an MO again only
once it has stopped waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smsc.base import InboundSms

# An MO acknowledged later than this after it arrived is not counted as acknowledged: SMSCs wait
# for a deliver_sm_resp / CIMD2 70 some seconds (10 to 60 commonly) and deliver the MO again when it
# comes late; our answer normally follows within milliseconds (one commit).
ACK_LATE_SECONDS = 5.0
# How long a refused new SMS is remembered on its connection, for its redelivery to count as new too
# (SMSC retry schedules run to minutes), and how many at most (a flood must not grow it unbounded).
OWED_SECONDS = 3600.0
OWED_MAX = 1000
# No SMSC re-sends an MO sooner than this after it (its timeout for our answer is seconds): a second
# identical one read within it, our answer to the first not yet written, is a second SMS flushed with
# the first. Judged by the earliest the second may have come (`smsc.stalls.earliest`), so that a copy
# read late behind a stalled loop is never taken for the SMSC's on a guess.
RESEND_MIN_SECONDS = 1.0

_Key = tuple[str, str, str, int]


@dataclass(slots=True)
class _Seen:
    at: float  # when it came (the earliest it may have)
    seq: int | None  # its sequence number, where the protocol has one (SMPP)
    sms: InboundSms | None = None  # as handed up: its acknowledgement is told by this object
    answered: float | None = None  # when our acknowledgement was written; None while it waits
    confirmed: bool = False  # the SMSC answered a request written after our acknowledgement


def _key(sms: InboundSms) -> _Key:
    return (sms.source, sms.destination, sms.text, sms.data_coding)


class Copies:
    """The one-part MOs read on one connection within ACK_LATE_SECONDS, and the new SMS answered with an
    error whose next copy is new too; see the module docstring."""

    def __init__(self) -> None:
        self._recent: dict[_Key, _Seen] = {}
        # New SMS (`repeated`) answered with an error, by key: how many and when the last was read.
        # The SMSC delivers each again, whenever its retry schedule says; that copy is new as well.
        self._owed: dict[_Key, tuple[int, float]] = {}

    def arrived(self, sms: InboundSms, at: float, since: float | None, seq: int | None) -> InboundSms:
        """`sms` read at loop time `at` (having come `since` at the earliest) as request `seq`, marked
        `resent` or `repeated` by the copy read before it on this connection (module docstring)."""
        if sms.concat is not None and sms.concat.total > 1:
            return sms
        recent = self._recent
        while recent and at - next(iter(recent.values())).at >= ACK_LATE_SECONDS:
            del recent[next(iter(recent))]
        key = _key(sms)
        earlier = recent.pop(key, None)
        seen = recent[key] = _Seen(at if since is None else since, seq)
        if earlier is not None and self._resent(earlier, seen):
            seen.sms = replace(sms, resent=True)
            return seen.sms
        repeated = earlier is not None  # read with the first, or after its answer went in time
        owed = self._owed.get(key)
        if owed is not None:
            count, last = owed
            if at - last >= OWED_SECONDS:
                del self._owed[key]
            else:
                repeated = True
                if count > 1:
                    self._owed[key] = (count - 1, last)
                else:
                    del self._owed[key]
        seen.sms = replace(sms, repeated=True) if repeated else sms
        return seen.sms

    @staticmethod
    def _resent(earlier: _Seen, seen: _Seen) -> bool:
        """Whether `seen` is the SMSC's re-send of `earlier`, an identical MO read before it."""
        unanswered = earlier.answered is None or earlier.answered - earlier.at > ACK_LATE_SECONDS
        if seen.seq is not None and seen.seq == earlier.seq and (unanswered or not earlier.confirmed):
            return True  # the same request again: no other may carry its number while it is unanswered
        if seen.at - earlier.at < RESEND_MIN_SECONDS:
            return False  # read together: two SMS the SMSC flushed at once
        return unanswered

    def answered(self, sms: InboundSms, at: float) -> None:
        """Our acknowledgement of `sms` was written at `at`: a copy read after it was sent anew."""
        seen = self._recent.get(_key(sms))
        if seen is not None and seen.sms is sms:
            seen.answered = at

    def confirmed(self, sms: InboundSms) -> None:
        """The SMSC read our acknowledgement of `sms` (written in time): its sequence number is free
        again, and an identical MO under it is a new SMS (`_resent`)."""
        seen = self._recent.get(_key(sms))
        if seen is not None and seen.sms is sms:
            seen.confirmed = True

    def refused(self, sms: InboundSms, at: float) -> None:
        """The MO read at `at` was answered with an error: the SMSC delivers it again. A copy of
        an SMS taken for the first of its kind must not count as a repeat of it; a copy of one
        taken for a new SMS (`repeated`) must count as new again, or a genuine vote is dropped."""
        key = _key(sms)
        if sms.repeated:
            count = self._owed.pop(key, (0, at))[0]
            if len(self._owed) < OWED_MAX:
                self._owed[key] = (count + 1, at)
        if (seen := self._recent.get(key)) is not None and seen.sms is sms:
            del self._recent[key]
