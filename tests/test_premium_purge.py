"""The late part of a long premium SMS stays that SMS's late part after the retention purge (R-2.5, R-5.2).

A 3-part vote whose parts 1 and 2 were joined by the timeout and whose part 3 came an hour later is
one SMS: billed on two premium-MO lines, the second "late part of the SMS of <date>", and counted
once. The purge deletes the rows of table mo but keeps the premium money records, so whatever ties
the late part to its SMS must live on those: a month billed again after the purge (a correction, or
the rerun of a failed run) must say what it said before. Everything runs on a real SQLite file with
an injected clock, through `GatewayEvents` and the `Housekeeping` worker, as tests/test_late_segments.py.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway.premium import handlers
from gateway.premium.stats import PremiumStats
from gateway.reassembly import TIMEOUT_SECONDS, gap
from gateway.retentionpurge import purge_before
from gateway.store.db import Store
from tests.billing_reader import read
from tests.test_late_segments import entries, first_two_parts_timed_out, vote
from tests.test_premium import T0, World

DAY = 86400.0
RETENTION = 90 * DAY


async def late_vote(w: World, *, delay: float = 3600) -> None:
    """Parts 1 and 2 joined by the timeout; part 3 `delay` later, taken for their late part once
    its own timeout shows it is no new SMS."""
    hk = await first_two_parts_timed_out(w)
    w.now += delay
    await vote(w, 3)
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()


def bill(w: World, state_dir: Path) -> tuple[list[list[str]], list[str]]:
    """The month's premium-MO lines of the account's file and its premium-MO total line."""
    tz = ZoneInfo(w.config.gateway.timezone)
    (account,) = write_month(w.store.path, state_dir, Month.containing(T0, tz), tz).accounts
    read(account.path.read_bytes())  # a well-formed file: its end line counts every line
    text = account.path.read_text()
    total = next(line for line in text.splitlines() if line.startswith("total\tkind\tpremium-MO\t"))
    return entries(text, "premium-MO"), total.split("\t")


def figures(w: World) -> list[tuple[object, ...]]:
    """(MOs, parts, price, commission) of `smsgw premium stats` and the panel's premium page."""
    return [
        (f.sms, f.parts, f.price, f.commission)
        for f in PremiumStats(w.store.db, w.store.clock).traffic(0, w.now + 1)
    ]


async def purge(w: World) -> None:
    """The daemon's purge once the vote is older than the retention: its rows of table mo go."""
    w.now += RETENTION + DAY
    await purge_before(w.store, w.now - RETENTION)
    assert w.store.db.conn.execute("SELECT COUNT(*) FROM mo").fetchone() == (0,)


async def test_a_late_part_is_billed_as_the_late_part_of_its_sms_after_the_purge(tmp_path: Path) -> None:
    # Before the purge: 2 lines, one SMS of 3 parts. After it the link through table mo was gone:
    # 2 SMS in the total, an empty reason, and `smsgw premium stats` and the panel said 2 votes.
    w = World(tmp_path)
    w.service()
    await late_vote(w)
    lines, total = bill(w, tmp_path / "before")
    assert [(cols[6], cols[9]) for cols in lines] == [("2", "6.00"), ("1", "3.00")]
    assert lines[0][8] == "" and lines[1][8].startswith("late part of the SMS of ")
    assert total[3:5] == ["1", "3"]
    before = figures(w)
    assert before == [(1, 3, 900, 330)]

    await purge(w)
    assert bill(w, tmp_path / "after") == (lines, total)
    assert figures(w) == before


async def test_late_parts_kept_for_a_confirmation_keep_their_answer_address_after_the_purge(
    tmp_path: Path,
) -> None:
    # Kept (not mailed) until the client confirms, which may come after the purge: the late part's
    # mail still carries the first mail's answer address and says it came late.
    w = World(tmp_path)
    sid = w.service(verified=False)
    await late_vote(w, delay=600)
    await purge(w)
    w.r.update_service(sid, verified_at=w.now)
    assert handlers.forward_awaiting(w.store, w.config, w.r.service(sid)) == 2  # type: ignore[arg-type]
    first, late = w.outbox("premium")
    assert first[3]["Reply-To"] is not None and late[3]["Reply-To"] == first[3]["Reply-To"]
    body = late[3].get_content()
    assert body.startswith(f"{gap(1, 2, 3)} part three") and "came late" in body


async def test_late_parts_recorded_before_the_upgrade_stay_late_parts_after_the_purge(tmp_path: Path) -> None:
    # A database of the version before: the upgrade takes the link from table mo while it is there.
    from tests.test_store import undo_migration_23  # here: a checkout before it still runs the rest

    w = World(tmp_path)
    w.service()
    await late_vote(w)
    undo_migration_23(w.store.db.conn)
    w.store.db.conn.execute("UPDATE schema_version SET version = 22")
    w.store.close()
    w.store = Store.open(tmp_path / "db.sqlite", clock=lambda: w.now)
    w.r = handlers.repo(w.store)
    rows = w.store.db.conn.execute("SELECT id, follows FROM premium_mo ORDER BY id").fetchall()
    assert rows == [(1, None), (2, 1)]
    # Billed once upgraded, before the purge: a database of version 22 has no first part's time
    # (migration 33), so its votes go by their join, before the purge and after it alike.
    lines, total = bill(w, tmp_path / "before")
    assert [(cols[6], cols[9]) for cols in lines] == [("2", "6.00"), ("1", "3.00")]
    await purge(w)
    assert bill(w, tmp_path / "after") == (lines, total)
    assert [f[:2] for f in figures(w)] == [(1, 3)]
