"""Which enquire_links of ours on one SMPP connection are still unanswered (keep-alives and probes).

An SMSC that answers with a sequence number of its own (0, or one it counts itself) answers none of
them by number: the connection logs such an answer as a stray, and while a keep-alive waits takes it
as the proof of life it is rather than drop a live session at every idle period.
"""

from __future__ import annotations

# Kept at most: an SMSC that answers none by number would otherwise grow the set by each probe.
_KEPT = 32


class Enquiries:
    """The sequence numbers of our enquire_links written on one connection and not yet answered."""

    __slots__ = ("_seqs",)

    def __init__(self) -> None:
        self._seqs: dict[int, None] = {}  # in the order written, the oldest dropped first

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
