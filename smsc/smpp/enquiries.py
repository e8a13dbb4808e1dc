"""Which enquire_links of ours on one SMPP connection are still unanswered (keep-alives and probes).

An SMSC that answers with a sequence number of its own (0, or one it counts itself) answers none of
them by number: the connection logs such an answer as a stray, and while a keep-alive waits takes it
as the proof of life it is rather than drop a live session at every idle period.
"""

from __future__ import annotations

import structlog

from smsc.smpp.pdu import status_text

log = structlog.get_logger(__name__)
ESME_RINVCMDID = 0x03
# Kept at most: an SMSC that answers none by number would otherwise grow the set by each probe.
_KEPT = 32


class Refusals:
    """Whether the link's SMSC was found answering our enquire_link with a generic_nack (the link's,
    across its connections): `Enquiries.refused` warns of it once, and later connections say it at INFO."""

    __slots__ = ("warned",)

    def __init__(self) -> None:
        self.warned = False


class Enquiries:
    """The sequence numbers of our enquire_links written on one connection and not yet answered."""

    __slots__ = ("_said", "_seqs", "refusals")

    def __init__(self) -> None:
        self._seqs: dict[int, None] = {}  # in the order written, the oldest dropped first
        self.refusals = Refusals()  # the link's (`smsc.smpp.link`)
        self._said = False

    def sent(self, seq: int) -> None:
        self._seqs[seq] = None
        if len(self._seqs) > _KEPT:
            del self._seqs[next(iter(self._seqs))]

    def answered(self, seq: int) -> bool:
        """An enquire_link_resp came for `seq`: whether it answers one of ours."""
        if seq in self._seqs:
            del self._seqs[seq]
            return True
        return False

    def answer_of(self, seq: int, *, stray: bool = True) -> int | None:
        """The enquire_link of ours an answer numbered `seq` answers, no longer waiting: its own, else
        (`stray`: an SMSC that answers with 0 or a number of its own) the oldest one waiting, as an
        SMSC answers in the order it reads; None when none of ours waits. Taken for none, an answer
        numbered 0 confirmed none of the MO acknowledgements written before the request it answers
        (`smsc.smpp.ackmarks`), and each of those MOs' next identical copy was dropped as the same SMS."""
        if self.answered(seq):
            return seq
        if not stray or not self._seqs:
            return None
        oldest = next(iter(self._seqs))
        del self._seqs[oldest]
        return oldest

    def refused(self, seq: int | None, link: str, status: int) -> bool:
        """A generic_nack answering our enquire_link `seq` (`answer_of`; None: none of ours): whether it
        says ESME_RINVCMDID (an SMSC that does not take the command). An answer all the same: the session
        lives. It comes for every keep-alive for ever, which was a WARNING each time: said once a
        connection, at INFO after the link's first. Another status (ESME_RSYSERR, ESME_RTHROTTLED)
        answers it too, but is trouble at the SMSC, not the command refused: False, said as any
        generic_nack is, not silenced."""
        if seq is None or status != ESME_RINVCMDID:
            return False
        if self._said:
            return True
        self._said = True
        say = log.info if self.refusals.warned else log.warning
        self.refusals.warned = True
        said = status_text(status)
        say("smpp.enquire_link_refused", link=link, seq=seq, status=said, said="once a connection")
        return True
