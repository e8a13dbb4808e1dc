"""How the waiting segments of one key (phone, our number, reference, total) split into the SMS they
belong to, and which of those the timeout joins (`gateway.store.segments`).

A phone's reference is one octet and some devices send every long SMS under the same one, so one key
can hold several SMS at once; a part the SMSC delivers again must go with the SMS it belongs to, a
part of a new SMS under the reused reference must not.
"""

from __future__ import annotations

from gateway import reassembly
from gateway.store.redelivery import RESENT, soon_after_ack, stamped_copy

# How far apart the parts of one SMS come when nothing held them: a phone hands them to the SMSC
# back to back and the SMSC delivers them in a row, in any order but a second or two apart even
# while we answer slowly. Within it, a part of a place the newest waiting set has free is its part;
# a person does not write and send the next long SMS that fast. Later, it is that set's part only
# if it continues the set (a place after all it holds): the SMSC delivers in order, and what it
# held (an outage, a restart of the daemon, a retry of a part we could not store) is the rest of
# the sequence, while a new SMS under the reused reference starts again at part 1. Where both carry
# the SMSC's stamp (CIMD2's 060: when the phone sent it), the stamps are compared instead, however
# late the part came. A part that fits neither is a set of its own, mailed at its timeout, as the
# late part of its SMS when it brings only parts that SMS lacked (`SegmentRepo._late_rest_of`).
PARTS_APART_SECONDS = 30.0
# How far apart the phone may have sent the parts of one SMS by the SMSC's stamps, beyond
# `PARTS_APART_SECONDS`, when the part is stamped in the order of its place among the set's (the
# phone sends part 1, then 2, ...): a phone on a poor signal retries a part for a minute or more.
# Split by the 30 s window alone, its answer was mailed as two halves with gaps five minutes later,
# a premium vote's second half to the fallback address. The reassembly timeout's default: a part
# sent later than that would have found its set mailed. Such a part is taken only once no part of
# its own SMS can still come: `PARTS_APART_SECONDS` after it came (the SMSC delivers one SMS's parts
# a second or two apart, in any order), or at the timeout, and never while a later part at a place
# the set holds carries a stamp within `PARTS_APART_SECONDS` of its own (that is its SMS's part).
# Taken as it came, part 2 of a new SMS under the reused reference that the SMSC delivered before
# its part 1 made the waiting set whole: the phone's second vote was glued to the first half of one
# whose second half was lost and charged as one, and the new SMS mailed alone with a gap. A new
# SMS's part 1 finds its place taken, or, stamped after the waiting set's part 2, out of order;
# only a new SMS whose own first parts were lost too is taken for the rest of the waiting one, as
# it is without stamps.
PARTS_SENT_APART_SECONDS = reassembly.TIMEOUT_SECONDS
# The most segments one key (phone, our number, reference, total) keeps waiting: beyond it, the
# timeout's pass joins its oldest sets early, with gap markers (mailed, not dropped). Twice the
# longest SMS (255 parts): no phone sends that much under one reference within a timeout, but a
# broken one could, and every part that comes reads all those waiting under its key.
MAX_WAITING_SEGMENTS = 512
# Where a waiting row (`_sets`) holds the link's word on it (`mo.repeated`).
_REPEATED = 10

_stamp = reassembly.stamp_seconds


class _Newest:
    """What `_sets` keeps of the newest set to tell whether a part belongs to it: the places it
    holds (and the last of them), when its last part came, and the stamp of each place (None once
    a part of it has none)."""

    def __init__(self, home: list[tuple]) -> None:
        self.home, self.places, self.top, self.last_at = home, set[int](), 0, float("-inf")
        # The span as well as each place's: read for every part, kept as they come (one pass).
        self.stamps: dict[int, float] | None = {}
        self.low, self.high = float("inf"), float("-inf")

    def add(self, seq: int, at: float, stamp: float | None) -> None:
        self.places.add(seq)
        self.top = max(self.top, seq)
        self.last_at = max(self.last_at, at)
        if self.stamps is not None:
            if stamp is None:
                self.stamps = None
            else:
                self.stamps[seq] = min(stamp, self.stamps.get(seq, stamp))
                self.low, self.high = min(self.low, stamp), max(self.high, stamp)

    def takes(
        self, seq: int, at: float, stamp: float | None, total: int, loose: bool, later: _Later | None
    ) -> bool:
        """Whether a part of a place this set has free belongs to it (`PARTS_APART_SECONDS`);
        `later` answers for the rows after it, given once no part of its own SMS can still come
        (`_sets`)."""
        if seq in self.places:
            return False
        if stamp is not None and self.stamps is not None:
            low, high = self.low, self.high
            if low - PARTS_APART_SECONDS <= stamp <= high + PARTS_APART_SECONDS:
                return True
            # Sent apart: its set's only if the phone sent it in its place's order, no more of
            # its own SMS can come, and none that came after it is (`PARTS_SENT_APART_SECONDS`).
            return (
                later is not None
                and low - PARTS_SENT_APART_SECONDS <= stamp <= high + PARTS_SENT_APART_SECONDS
                and all(s <= stamp if p < seq else s >= stamp for p, s in self.stamps.items())
                and not later.near(self.places, stamp)
            )
        # Without stamps, a late part that makes the set whole is the part the SMSC delivered
        # again (a part we could not store, one whose acknowledgement a dropped connection lost):
        # joins parts out of order. Split off, both halves were mailed with gaps, a premium
        # vote's second half went to the fallback address, and a whole SMS billed as failed. At
        # the timeout (`loose`) every free place is taken, as no more parts are coming.
        whole = len(self.places) + 1 == total
        return loose or at - self.last_at <= PARTS_APART_SECONDS or seq > self.top or whole


class _Later:
    """The stamped rows of one key by place, to tell whether a row after the one at `index` holds a
    place of a set with a stamp near its own: that row is a part of the same SMS as it, which the
    set's part at that place is not. Read only when a part sent apart is weighed (rare)."""

    def __init__(self, rows: list[tuple]) -> None:
        self.rows, self.index = rows, 0
        self.by_place: dict[int, list[tuple[int, float]]] | None = None

    def near(self, places: set[int], stamp: float) -> bool:
        if self.by_place is None:
            self.by_place = {}
            for i, row in enumerate(self.rows):
                if (held := _stamp(row[6])) is not None:
                    self.by_place.setdefault(row[1], []).append((i, held))
        return any(
            i > self.index and abs(s - stamp) <= PARTS_APART_SECONDS
            for p in places
            for i, s in self.by_place.get(p, ())
        )


def continues(held: list[tuple[int, float]], late: list[tuple[int, float]], total: int) -> bool:
    """Whether late parts (place, stamp), come after their SMS was mailed without them, are the rest
    of the SMS whose mailed parts hold `held`, as a set that still waited would take them once no
    part of their own SMS can come (`_Newest.takes`): a part sent within `PARTS_SENT_APART_SECONDS`
    of its SMS's last part is its part whatever its first part's stamp, and one stamped before a
    part of a later place is not. Judged by the first part's stamp alone, the third part of an
    answer sent 5 minutes after its first (4 after the second) went to whoever had texted the phone
    since, and a part 2 stamped after the part 3 mailed was taken for that SMS's."""
    newest = _Newest([])
    for seq, stamp in held:
        newest.add(seq, 0.0, stamp)
    for seq, stamp in late:
        if seq not in newest.places:
            if not newest.takes(seq, 0.0, stamp, total, False, _Later([])):
                return False
            newest.add(seq, 0.0, stamp)
    return True


def _again(held: tuple, row: tuple) -> bool:
    """Whether `row`, a part of the same place and text as `held` (a waiting row), is the SMSC
    delivering `held` again, as for a part of a set joined already (`SegmentRepo._joined_already`).
    Where both carry the SMSC's stamp (`gateway.store.redelivery`): the same stamp is the same SMS
    while the acknowledgement of `held` is not known to have been read, however late it comes (taken
    for a new one, the copy waited alone and was mailed a second time, with a false gap, and a
    premium vote's part charged twice), when the link saw the SMSC send it again (`RESENT`), or within
    `REPEAT_AFTER_ACK_SECONDS` of that acknowledgement; another stamp is a new SMS. The SMSC delivers
    no part again whose acknowledgement it read: one stamping to the minute gives the phone's next
    long vote under its one reference the stamp of a vote whose part 2 was lost, and on its next
    connection the new part 1 went with the waiting one, two votes mailed and charged as one. Without
    a stamp, not once that acknowledgement was read more than `REPEAT_AFTER_ACK_SECONDS` before it
    came (a modem that sends the same alarm every few minutes under one reference sends a new SMS
    each time; taken for copies, its alarms were never mailed)."""
    held_stamp, acked_at = held[6], held[8]
    stamp, at = row[6], row[7]
    if stamp is not None and held_stamp is not None:
        if stamp != held_stamp:
            return False
        return stamped_copy(acked_at, at, len(row) > _REPEATED and row[_REPEATED] == RESENT)
    return acked_at is None or soon_after_ack(acked_at, at)


def _sets(
    rows: list[tuple], total: int, *, loose: bool = False, ripe_before: float | None = None
) -> list[list[tuple]]:
    """The waiting segments of one key (rows of id, seq, text, link, destination, coding, smsc_time,
    received_at, acked_at, note, repeated), in arrival order, split into the SMS they belong to, in
    one pass (a key can hold many: a modem's alarms under one reference, each missing a part).

    A copy of a part a set holds (same place and text, `_again`) is that set's. A part whose place
    the newest set has free joins it when it came with that set's parts, continues them
    (`PARTS_APART_SECONDS`), makes it whole, or `loose` (the timeout's pass); where both carry the
    SMSC's stamps, when the phone sent it with them, or in order and within
    `PARTS_SENT_APART_SECONDS` once no part of its own SMS can still come: `loose`, or it came at
    `ripe_before` or before (`PARTS_APART_SECONDS` ago), and none came after it. Any other part starts
    a new set: the phone reused the reference (one octet, constant on some devices). Joined to an
    older set by a free place alone, the first half of a new SMS was mailed with the second half
    of one whose first part was lost. Without the SMSC's stamps, a new SMS's first part that makes
    a waiting set whole is still taken for that set's late part: the two cannot be told apart, and
    a part delivered again is the likelier (every SMSC retries; a part lost outright is rare)."""
    sets: list[list[tuple]] = []
    held: dict[tuple[int, str], tuple[list[tuple], tuple]] = {}  # the latest row of each place and text
    newest: _Newest | None = None
    later: _Later | None = None
    for index, row in enumerate(rows):
        seq, text, smsc_time, at = row[1], row[2], row[6], row[7]
        stamp = _stamp(smsc_time)
        copy = held.get((seq, text))
        ripe = loose or (ripe_before is not None and at <= ripe_before)
        if ripe and stamp is not None:
            later = later or _Later(rows)
            later.index = index
        if copy is not None and _again(copy[1], row):
            home = copy[0]
        elif newest is not None and newest.takes(seq, at, stamp, total, loose, later if ripe else None):
            home = newest.home
        else:
            sets.append(home := [])
            newest = _Newest(home)
        if newest is not None and home is newest.home:
            newest.add(seq, at, stamp)
        home.append(row)
        held[(seq, text)] = (home, row)
    return sets


def _due(sets: list[list[tuple]], older_than: float | None, waiting: int) -> list[list[tuple]]:
    """The sets of one key the timeout joins: those whose newest part came at `older_than` or before
    (every one, without it), and, oldest first, any but the newest while more than
    `MAX_WAITING_SEGMENTS` would still wait."""
    due = []
    for i, rows in enumerate(sets):
        stale = older_than is None or max(r[7] for r in rows) <= older_than
        if stale or (waiting > MAX_WAITING_SEGMENTS and i < len(sets) - 1):
            due.append(rows)
            waiting -= len(rows)
    return due
