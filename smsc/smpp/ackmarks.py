"""Which of our requests on one SMPP connection confirm which MO acknowledgements.

An MO's deliver_sm_resp counts as received once the SMSC answered a request of ours written after it:
the SMSC reads the connection in order (`smsc.base.MoAcks`). `SmppConnection` marks each enquire_link
and unbind it writes while acknowledgements wait, and hands every answer it reads here.
"""

from __future__ import annotations

from smsc.base import MoAcks


class AckMarks:
    """The `MoAcks.count` at each marked request of ours still unanswered, by sequence number."""

    __slots__ = ("_marks", "acks")

    def __init__(self, acks: MoAcks) -> None:
        self.acks = acks
        self._marks: dict[int, int] = {}

    def mark(self, seq: int) -> None:
        """Our request `seq` is written now: its answer confirms the MO acknowledgements before it."""
        if self.acks.waiting:
            self._marks[seq] = self.acks.count

    def answered(self, seq: int) -> None:
        """An answer to `seq`, whatever its status, proves the SMSC read what came before the request."""
        if not self._marks:
            return
        mark = self._marks.pop(seq, None)
        if mark is not None:
            self.acks.answered(mark)
            # Requests written before this one can confirm nothing more (one left unanswered).
            self._marks = {s: m for s, m in self._marks.items() if m > mark}

    def clear(self) -> None:
        """The connection ended: no answer will come (`MoAcks.closed` says what stays unconfirmed)."""
        self._marks.clear()
