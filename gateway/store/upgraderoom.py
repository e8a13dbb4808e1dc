"""The free space an upgrade of the schema needs, looked at before its first migration commits.

A migration that builds an index (or rewrites rows) writes its pages twice: into the WAL at its
commit, then into the database file at the next checkpoint. Migration 67 keeps some 33 MB a
million parts, and its peak is twice that. With the kept size free and not twice it, the upgrade
committed, the first checkpoint failed, every mail got 452 from then on, and `smsgw status` said
only "starting": the disk filled after the upgrade, not during it, where a refusal is clean.

So the pending migrations' writes are estimated from what they read (their tables' rows, counted
on the smallest index where SQLite can; the text of the rows an index copies), and the upgrade is
refused before anything commits when the state directory has less than twice that free (once for
a migration that only drops, `_FREED`: the file does not grow), plus a margin for the daemon's own
first writes. The estimates err on the high side (some 40 bytes an
entry of parts_sent, where a million parts measured 33): a refusal names the room to make, while
an upgrade that fills the disk leaves a gateway that runs and takes no mail.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gateway.store.fileguard import StoreError

# What each migration writes, by the version it reaches, in bytes: one SQL giving it from the
# database as it is before the upgrade (a table or column missing there reads as nothing: an
# upgrade from far back, whose tables are empty or small). Migrations that only add a column or a
# small table are absent: they write a few pages.
_WRITES: dict[int, tuple[str, str]] = {
    61: (
        "indexes of the premium votes and of the users",
        "SELECT (SELECT count(*) FROM premium_mo) * 2 * 72 + (SELECT count(*) FROM users) * 24",
    ),
    62: ("an index of the parts' links", "SELECT count(*) * 48 FROM parts"),
    63: (
        "indexes of the MOs' texts and stamps",
        "SELECT total(length(source) + length(destination) + length(text)) + count(*) * 48 FROM mo",
    ),
    # Rows rewritten in place: each page holding one is written whole, so a row costs a page at most
    # and the whole table (its rows' sizes) at the most.
    65: (
        "the MOs' protocol, on the rows of CIMD2 links",
        "SELECT min(total(CASE WHEN smsc_time IS NULL AND seqs IS NULL AND COALESCE(concat_total, 1) <= 1"
        " AND link IN (SELECT substr(key, 11) FROM billing_state"
        " WHERE key >= 'link_bind/' AND key < 'link_bind0' AND value LIKE 'cimd2|%')"
        " THEN 4096 ELSE 0 END), total(length(text) + 128)) FROM mo",
    ),
    # Asked only below 66, where no 'dsn-group' row exists yet and the index of kinds names the two
    # older ones: with the third named, SQLite cannot take that partial index and scans the whole
    # outbox, each row with its mail (2.3 s cold for 100,000 rows of 3 kB, more than the migration).
    66: (
        "an index of the outbox's kinds",
        "SELECT count(*) * 32 FROM outbox WHERE kind IN ('not-sent', 'bounce-forward')",
    ),
    67: ("an index of the parts by their submit time", "SELECT count(*) * 40 FROM parts"),
    68: (
        "an index of the outbox's kinds and its grouped confirmations",
        "SELECT count(*) * 32 + total(CASE WHEN kind = 'dsn-group' THEN length(content) + 512 ELSE 0 END)"
        " FROM outbox WHERE kind IN ('not-sent', 'bounce-forward', 'dsn-group')",
    ),
    # The old index of every mail's key is dropped: its pages go to the free list and are written to
    # the WAL as they go (some 100 bytes a mail, a 64-digit key's entry in pages filled at random).
    70: ("a smaller index of the mails' keys", "SELECT count(*) * 100 FROM emails"),
    # The unique index of the SMS's keys is dropped (its pages freed, as for 70) and one of the keys
    # and times built: some 100 bytes a keyed SMS each. Counted on the old index (its predicate).
    73: (
        "an index of the SMS's keys and times",
        "SELECT count(*) * 200 FROM messages WHERE dedup_key IS NOT NULL",
    ),
    # Counted on the index of the rows naming an MO (the answer mails and their kept and fallback
    # kinds, a few more than the index holds): the outbox's own rows would be read whole, mails and all.
    75: (
        "an index of the answer mails by address",
        "SELECT count(*) * 64 FROM outbox WHERE mo_ref IS NOT NULL",
    ),
    # An entry of each MO (the number, a time, the rowid): 26 bytes an MO measured with 12-character
    # numbers (into the WAL, and as much again into the file), 300,000 MOs here and 1.5 million.
    # Counted at 32: E.164's longest numbers are 4 characters longer, and 2 for a margin. At 64 (2.5
    # times it) an upgrade of 1.5 million MOs asked 299 MB free, where it ran in 157 MB.
    76: ("an index of each phone's MOs by time", "SELECT count(*) * 32 FROM mo"),
    # 75's index dropped: each of its pages goes to the free list through the WAL (a million answer
    # mails to 20-letter addresses measured 40 MB), the file not growing (`_FREED`). Counted at 48 (a
    # fifth more, for longer addresses), on the rows naming an MO as 75 counted them.
    77: (
        "the free list of the answer mails' index by address, dropped",
        "SELECT count(*) * 48 FROM outbox WHERE mo_ref IS NOT NULL",
    ),
}

# Migrations that only drop: their pages are written into the WAL, then back over pages the file
# already has (it does not grow), so they count once, not twice.
_FREED = frozenset({77})

# 68 asked below 66: the rows 66 then 68 index are the two older kinds' (66 adds no row), and no
# grouped confirmation to tell from a bounce exists yet; the predicate is the index's at that schema.
_WRITES_BELOW_66 = {68: _WRITES[66][1]}

# Room for the daemon's first writes after the upgrade, before its first checkpoint.
MARGIN_BYTES = 4 * 1024 * 1024
# An upgrade writing less than this is not looked at: it fits in the pages of a disk's last MB, and
# a failure on a disk full to the byte is a clean one (nothing committed, exit 1, the room said).
CHECKED_FROM_BYTES = 1024 * 1024


_WRITTEN_TWICE = " written to the WAL and then as much again into the database file"
_WRITTEN_ONCE = " written to the WAL"


@dataclass(frozen=True, slots=True)
class UpgradeWrites:
    total: int  # bytes the pending migrations write, once
    largest: int  # the version reached by the migration writing most
    what: str  # what that one builds
    its_bytes: int
    freed: int = 0  # of `total`, what migrations that only drop write (`_FREED`): the file does not grow

    def need(self) -> int:
        """The free space the upgrade needs at its peak: what grows the file twice (the WAL, then the
        file), what only frees pages once (the WAL), and room for the daemon's first writes."""
        return 2 * (self.total - self.freed) + self.freed + MARGIN_BYTES


def upgrade_writes(conn: sqlite3.Connection, version: int, to: int) -> UpgradeWrites | None:
    """What the migrations from `version` to `to` write; None when none of them writes much."""
    total, freed, largest = 0, 0, (0, 0, "")
    for reached in range(version + 1, to + 1):
        if reached not in _WRITES:
            continue
        what, sql = _WRITES[reached]
        if version < 66:
            sql = _WRITES_BELOW_66.get(reached, sql)
        try:
            size = int(conn.execute(sql).fetchone()[0] or 0)
        except sqlite3.OperationalError:  # no such table or column yet: a database from far back
            continue
        total += size
        freed += size if reached in _FREED else 0
        if size > largest[1]:
            largest = (reached, size, what)
    if total * 2 < CHECKED_FROM_BYTES:
        return None
    return UpgradeWrites(total, largest[0], largest[2], largest[1], freed)


def refuse_short_room(conn: sqlite3.Connection, path: Path, version: int, to: int) -> None:
    """Raise `StoreError` (exit 1: a restart once there is room runs the upgrade) when the
    filesystem of the database at `path` has less free than the upgrade from `version` to `to`
    needs at its peak; nothing is committed by then."""
    from gateway.statusfile import size_words

    writes = upgrade_writes(conn, version, to)
    if writes is None:
        return
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return
    free = st.f_bavail * st.f_frsize
    need = writes.need()
    if free >= need:
        return
    raise StoreError(
        f"upgrading the database {path} from schema version {version} to {to} needs about"
        f" {size_words(need)} free on the filesystem of {path.parent}, and {size_words(free)} is:"
        f" migration {writes.largest} builds {writes.what} (about {size_words(writes.its_bytes)}),"
        f"{_WRITTEN_ONCE if writes.largest in _FREED else _WRITTEN_TWICE}; nothing was changed:"
        " free space there (or grow the filesystem) and start again"
    )
