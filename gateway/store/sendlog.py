"""Which parts went after a step back of the wall clock, told by the order their sends were recorded in.

A part's send time (`parts.submitted_at`) is stamped when the SMSC takes it, long after its SMS was
accepted; the SMS's id says nothing of when it went. A part of an SMS accepted before a step back and
sent in the seconds between the step and the clock check's look that finds it already carries the
stepped clock, and moving it with the rest (`senttimes.shift_sent`) made it read older by the step
again: a phone's answer to it read as an answer to the SMS the phone had before, of another user.
A send time alone cannot say on which side of the step it was stamped, as the rows' times cannot
(`gateway.store.clockstep`): those of the step's width before it read the same. So the sends are
counted as they are recorded (`SendLog`), the count read at every look with the rows' ids, and the
sends between two looks are placed by their time as `first_after` places the rows between them.

In memory: a look comes every few seconds, and the log holds the sends since the one before. A crash
between a step and its look loses it, and the next start moves the parts sent in those seconds as
before it (its first look places the rows from the kept reading: `gateway.clocksteps.seam`).
"""

from __future__ import annotations

import json
import sqlite3

# Sends kept while no look forgets them (a process that sends without the clock check): far more than
# any link takes between two looks, a few seconds apart.
KEPT = 100_000


class SendLog:
    """The parts recorded as submitted, in order, since the clock check's look before last."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._dropped = 0  # how many sends came before `_ids[0]`, forgotten
        self._looked = 0  # the count the clock check's last look read (none yet: since the start)

    def note(self, part_id: int) -> None:
        self._ids.append(part_id)
        if len(self._ids) > KEPT:  # the older half goes: sent long before any look to come
            cut = len(self._ids) - KEPT // 2
            del self._ids[:cut]
            self._dropped += cut

    def mark(self) -> int:
        """How many sends have been recorded: read by each look, with the rows' ids."""
        return self._dropped + len(self._ids)

    def looked(self, mark: int) -> None:
        """The look that read `mark` is done: the sends before it are forgotten (no step the next look
        finds can come before them)."""
        cut = max(mark - self._dropped, 0)
        del self._ids[:cut]
        self._dropped += cut
        self._looked = mark

    def since(self, mark: int) -> list[int]:
        """The parts recorded as submitted after the count read `mark` (kept while no look forgets them:
        a step back's move runs inside one look, `gateway.stepmoves`)."""
        return self._ids[max(mark - self._dropped, 0) :]

    def after_step(self, conn: sqlite3.Connection, mark: int, between: float, start: bool) -> tuple[int, ...]:
        """The parts whose send time carries the clock of a step back found by the look that read
        `mark`: every part sent since that look, and those sent between it and the look before whose
        time reads before `between` (`clocksteps.seam`: the stepped clock reads behind it, the clock
        before the step at or after it). On a start's first look (`start`), every send of this run:
        the step was made while the daemon was stopped. Run inside the step's write."""
        ids = self._ids[max(self._looked - self._dropped, 0) : max(mark - self._dropped, 0)]
        later = self._ids[max(mark - self._dropped, 0) :]
        if start or not ids:
            return tuple(sorted({*ids, *later}))
        stepped = conn.execute(
            "SELECT id FROM parts WHERE id IN (SELECT value FROM json_each(?)) AND submitted_at < ?",
            (json.dumps(ids), between),
        ).fetchall()
        return tuple(sorted({*(row[0] for row in stepped), *later}))
