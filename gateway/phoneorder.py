"""Which SMS to a phone wait for an older one to it, so that the phone gets them in order (F5).

Two kinds of older SMS are waited for. A suspect of ending sessions (`gateway.outcomes`) backs off
and goes after the parts claimed with it; the later SMS to its phone go with it, after it, not
before. A part handed back unsent (its link went, or is busy or throttled) is due again a moment
later; the later SMS to its phone are not due before it: each due again a second after its own
hand-back, a phone's SMS handed back a few milliseconds apart as the link dropped came due apart,
and a later one was claimed first. Kept by this process only, on the store's clock.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.store.db import ClaimedPart

# A later SMS to a phone claimed while an earlier one handed back is not claimed again yet goes back to
# the queue due when that one is, or this long from now if that time has passed (the earlier one is
# then claimed first); one not claimed again this long after its time is no longer waited for.
HANDED_BACK_RECHECK = 0.05
HANDED_BACK_WAITED = 1.0  # as long as a part handed back with no link up waits (`outcomes.NO_LINK_DELAY`)
# Parts handed back that are waited for, kept at most: those that expired waiting, their phones not
# seen again, go first, then the oldest.
WAITS_KEPT = 4096


class PhoneOrder:
    """The older SMS each phone's later ones wait for; `clock` is the store's."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        # phone -> (the suspect backing off, its (message, seq), when it is due again); part id -> its
        # phone: the later SMS to that phone wait for it.
        self.suspects: dict[str, tuple[int, tuple[int, int], float]] = {}
        self.suspect_of: dict[int, str] = {}
        # phone -> part id -> ((message, seq), when it is due again): parts handed back unsent with a
        # wait (`handed_back`); the later SMS to the phone are not due before them.
        self.handed: dict[str, dict[int, tuple[tuple[int, int], float]]] = {}
        self.handed_of: dict[int, str] = {}

    def suspect(self, part: ClaimedPart, due: float) -> None:
        """The part backs off as a suspect until `due`; an older suspect to its phone stays the one
        waited for."""
        held = self.suspects.get(part.destination)
        if held is None or held[0] == part.id:
            self.suspects[part.destination] = (part.id, (part.message_id, part.seq), due)
            self.suspect_of[part.id] = part.destination

    def suspects_last(self, parts: list[ClaimedPart]) -> list[ClaimedPart]:
        """Claimed parts in their order, but those suspected of ending sessions last, and after them,
        in their order, the later SMS to their phones (F5): due again as a link comes back, the
        oldest went first on the new session (the claim's order is the messages') and ended it
        before anything else was answered."""
        if not self.suspects:
            return parts
        return sorted(parts, key=self._after_suspect)

    def _after_suspect(self, part: ClaimedPart) -> bool:
        """Whether the part is a suspect backing off or a later SMS to its phone."""
        suspect = self.suspects.get(part.destination)
        return suspect is not None and (part.message_id, part.seq) >= suspect[1]

    def behind_suspect(self, part: ClaimedPart, now: float) -> float | None:
        """How long the part waits for an older SMS to its phone that backs off as a suspect, or that
        was handed back unsent due a moment later (F5): it goes with it, after it (`suspects_last`,
        the claim's order); None when there is none to wait for."""
        due = self.due_after(part, now)
        return None if due is None else due - now

    def due_after(self, part: ClaimedPart, now: float) -> float | None:
        """When the older SMS to the part's phone that it waits for (`behind_suspect`) is due; None
        when there is none to wait for."""
        key = (part.message_id, part.seq)
        due: float | None = None
        suspect = self.suspects.get(part.destination)
        if suspect is not None and suspect[0] != part.id and key >= suspect[1] and suspect[2] > now:
            due = suspect[2]
        handed = self.handed.get(part.destination)
        if handed:
            for pid, (older, at) in list(handed.items()):
                if at + HANDED_BACK_WAITED <= now:  # not claimed again long after its time: gone
                    del handed[pid]
                    self.handed_of.pop(pid, None)
                elif older < key and pid != part.id:
                    # Not claimed again yet: due a moment apart, the claim that took this one came
                    # before it was due (the claim reads the clock before the parts are handed out).
                    at = max(at, now + HANDED_BACK_RECHECK)
                    due = at if due is None else max(due, at)
            if not handed:
                del self.handed[part.destination]
        return due

    def claimed(self, parts: list[ClaimedPart]) -> None:
        """Parts just claimed: the later SMS to their phones, claimed with them or after, no longer
        wait for them (`due_after`); the claim's order puts them first."""
        if self.handed_of:
            for part in parts:
                self._unwait(part.id)  # a suspect claimed again stays one (`suspects_last`)

    def handed_back(self, part: ClaimedPart, delay: float, now: float) -> float:
        """When a part handed back unsent `delay` from `now` is due again: not before an earlier SMS to
        its phone that waits likewise (so that one claim takes both, in their order), nor before a
        suspect it goes after. Remembered for the later SMS to its phone (`due_after`)."""
        due = now + delay
        older = self.due_after(part, now)
        if older is not None and older > due:
            due = older
        if due > now:
            self.wait_for(part, due)
        return due

    def wait_for(self, part: ClaimedPart, due: float) -> None:
        """The later SMS to the part's phone are not due before `due` (`due_after`)."""
        self.handed.setdefault(part.destination, {})[part.id] = ((part.message_id, part.seq), due)
        self.handed_of[part.id] = part.destination
        if len(self.handed_of) > WAITS_KEPT:  # those that expired waiting, their phones not seen again
            now = self.clock()
            for pid, phone in list(self.handed_of.items()):
                if self.handed[phone][pid][1] <= now:
                    self._unwait(pid)
            while len(self.handed_of) > WAITS_KEPT:
                self._unwait(next(iter(self.handed_of)))

    def forget(self, part_id: int) -> None:
        """Nothing waits for the part any more: answered, held or ended."""
        self._unwait(part_id)
        phone = self.suspect_of.pop(part_id, None)
        if phone is not None and self.suspects.get(phone, (None,))[0] == part_id:
            del self.suspects[phone]

    def _unwait(self, part_id: int) -> None:
        """The later SMS to the part's phone no longer wait for it as one handed back (`wait_for`)."""
        phone = self.handed_of.pop(part_id, None)
        if phone is not None:
            waiting = self.handed.get(phone, {})
            waiting.pop(part_id, None)
            if not waiting:
                self.handed.pop(phone, None)
