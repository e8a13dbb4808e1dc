"""The other windows counted back from the clock after it stepped forward by days: each counts the time
that passed, as the reply window does (`gateway.store.forwardsteps`).

After a step forward (NTP correcting a clock days behind, an admin setting the date) what was stamped
before it reads older by the step. The reply window counted that as not passed; a number another
account left, the "N days ago" of an unmatched answer's note, the retention of the SMS and of the
premium texts (and the purge's mark in the billing files), the quiet hour of the kept answers and the
hourly limit of a phone's answers counted it as days gone. Real SQLite files, with the clock injected
where the code reads it (the senders' table is written on the database's own clock, so its rows are
moved back by the step instead).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from billing_reports.repo import LAST_BILLED, PURGED_BEFORE, BillingRepo
from gateway import retentionpurge, scheduler
from gateway.config import parse_config
from gateway.conversations import inbound
from gateway.conversations import kept as kept_answers
from gateway.housekeeping import Housekeeping
from gateway.premium import confirmation
from gateway.premium.queries import purge_texts
from gateway.reassembly import TIMEOUT_SECONDS
from gateway.store import forwardsteps
from gateway.store.db import Store
from tests.conftest import STAFF, free_port
from tests.test_clock_step import DAY, HOUR, Monotonic, housekeeping
from tests.test_clock_step_answers import sent
from tests.test_clock_step_forward_answers import answered_before_a_step, looking, passes, step_seen
from tests.test_conversations import BASE, PHONE, World
from tests.test_inbound_address import OWN, own_config
from tests.test_inbound_address_senders import CONVERSATION
from tests.test_late_segments import charged, vote
from tests.test_premium import World as PremiumWorld


def test_a_step_forward_does_not_hand_a_number_that_moved_to_the_next_account_early(tmp_path: Path) -> None:
    # "other" sent from OWN and moved to another number; a moment later the clock stepped 98 days
    # ahead. Its stop read 98 days ago, past the retention and its reply window (90 + 7 days): OWN
    # was no longer kept from acme's inbound address, and other's customers answering its SMS of a
    # minute before reached acme's reception.
    cfg = own_config(tmp_path, free_port(), "+48500600701")
    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn = store.db.conn
        store.accounts.add_account("other", sender=OWN)
        other = store.accounts.get_account("other").id
        conn.execute(CONVERSATION, (PHONE, OWN, "bob@other.example", other, time.time()))
        store.accounts.update_account("other", sender="+48500600702")
        # The step, as the database's clock reads the stop now (its triggers stamp on that clock).
        conn.execute("UPDATE account_senders SET until = until - 98 * 86400 WHERE until IS NOT NULL")
        forwardsteps.record_forward(conn, time.time(), 98 * DAY)
        until = inbound.moved_until(conn, cfg, OWN, other + 1)
        assert until == pytest.approx(time.time() + 97 * DAY, abs=60.0)
        # No step kept: the stop is as old as it reads, and the number is acme's.
        conn.execute("DELETE FROM billing_state WHERE key = ?", (forwardsteps.FORWARD_KEY,))
        assert inbound.moved_until(conn, cfg, OWN, other + 1) is None
    finally:
        store.close()


async def test_an_unmatched_answers_note_counts_the_days_that_passed(tmp_path: Path) -> None:
    # Anna's SMS went 7.5 days before the answer, 15.5 by a clock that stepped 8 days ahead meanwhile:
    # the note said "15 days ago" of an SMS a week old.
    w, mono, hk = await looking(tmp_path)
    sent(w, STAFF, "Anna's offer")
    passes(w, mono, 6 * DAY)
    await step_seen(w, mono, hk, 8 * DAY)
    passes(w, mono, 1.5 * DAY)
    await w.mo("Too late")
    assert w.mo_states() == ["unmatched"]
    [(note,)] = w.store.db.conn.execute("SELECT note FROM mo").fetchall()
    assert "7 days ago, past its reply window of 7 days" in note, note


def delivered(w: World) -> None:
    """The SMSC's report that each SMS `sent` submitted reached the phone: its SMS is finished."""
    for (smsc_id,) in w.store.db.conn.execute("SELECT smsc_id FROM parts").fetchall():
        w.store.queue.record_report("main", smsc_id, "delivered", None, "x")


def emails(w: World) -> int:
    return int(w.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0])


async def test_the_retention_counts_a_step_forward_as_no_time_passed(tmp_path: Path) -> None:
    # A retention of 5 days: Anna's SMS went a day before the clock stepped 8 days ahead, and the purge
    # deleted it (9 days old by the clock) while its conversation was still answerable. It goes once
    # 5 days have passed.
    w, mono, hk = await looking(tmp_path)
    sent(w, STAFF, "Anna's offer")
    delivered(w)
    passes(w, mono, DAY)
    await step_seen(w, mono, hk, 8 * DAY)
    await retentionpurge.purge_before(w.store, w.now - 5 * DAY, reply_window=7 * DAY)
    assert emails(w) == 1
    assert w.store.db.conn.execute("SELECT state FROM messages").fetchall() == [("delivered",)]
    passes(w, mono, 4 * DAY)
    await retentionpurge.purge_before(w.store, w.now - 5 * DAY, reply_window=7 * DAY)
    assert emails(w) == 0


async def test_the_kept_answers_quiet_hour_counts_a_step_forward_as_no_time_passed(tmp_path: Path) -> None:
    # The third answer within a minute is kept by the limit of 2 an hour; a second later the clock
    # steps 8 days ahead. The phone's quiet hour read as passed at once, and the digest went a minute
    # after the flood instead of an hour.
    w, mono, before = await answered_before_a_step(tmp_path, "Tak", "Będę", "Jednak o 11")
    assert before == ["mailed", "mailed", "throttled"]
    passes(w, mono, 60.0)
    assert await w.store.write(lambda: kept_answers.mail_due(w.store, w.config)) == 0  # type: ignore[arg-type]
    passes(w, mono, HOUR - 60.0)
    assert await w.store.write(lambda: kept_answers.mail_due(w.store, w.config)) == 1  # type: ignore[arg-type]


async def test_the_billing_files_purge_note_says_what_the_purge_deleted_after_a_step_forward(
    tmp_path: Path,
) -> None:
    # January billed, a retention of 5 days: the purge kept Anna's SMS of January 30th, a day before a
    # step of 8 days, yet marked January's detail rows "deleted" up to February (the month under way,
    # held for its bill): January's billing file written again would say her SMS's lines were missing.
    w, mono, hk = await looking(tmp_path)
    w.config = parse_config(BASE.replace("[gateway]\n", "[gateway]\nretention_days = 5\n"), source="test")
    passes(w, mono, 15 * DAY)  # January 30th
    sent(w, STAFF, "Anna's offer")
    delivered(w)
    [(went,)] = w.store.db.conn.execute("SELECT received_at FROM emails").fetchall()
    billing = BillingRepo(w.store.db, w.store.clock)
    billing.put(LAST_BILLED, "2027-01")
    passes(w, mono, DAY)
    await step_seen(w, mono, hk, 8 * DAY)
    await scheduler.purge(w.store, w.config)  # type: ignore[arg-type]
    assert emails(w) == 1
    assert float(billing.get(PURGED_BEFORE) or 0) < went


def test_premium_texts_are_kept_for_the_retention_as_time_passed(tmp_path: Path) -> None:
    # A vote's text, kept for the retention (5 days) beside its money record, was blanked by the purge
    # right after a step forward of 8 days made a day after it came.
    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn = store.db.conn
        came = time.time() - DAY
        conn.execute(
            "INSERT INTO premium_mo (mo_id, number, phone, parts, price, commission, text, state,"
            " received_at) VALUES (1, '7155', ?, 1, 300, 110, 'TAK', 'mailed', ?)",
            (PHONE, came - 8 * DAY),  # as the clock reads it after the step
        )
        forwardsteps.record_forward(conn, time.time(), 8 * DAY)
        purge_texts(conn, time.time() - 5 * DAY, 0.0, (0.0, 0), 25)
        assert conn.execute("SELECT text FROM premium_mo").fetchall() == [("TAK",)]
        later = time.time() + 4 * DAY + 60.0  # 5 days after it came
        purge_texts(conn, later - 5 * DAY, 0.0, (0.0, 0), 25)
        assert conn.execute("SELECT text FROM premium_mo").fetchall() == [("",)]
    finally:
        store.close()


async def test_the_hourly_limit_of_a_phones_answers_counts_a_step_forward_as_no_time_passed(
    tmp_path: Path,
) -> None:
    # Two answers mailed (the limit is 2 an hour); a second later the clock steps 8 days ahead. The
    # hour read as over, and the third answer, a minute after the first, was mailed too.
    w, mono, _ = await answered_before_a_step(tmp_path, "Tak", "Będę")
    passes(w, mono, 60.0)
    await w.mo("Jednak o 11")
    assert w.mo_states() == ["mailed", "mailed", "throttled"]
    passes(w, mono, HOUR)
    await w.mo("Do zobaczenia")
    assert w.mo_states()[-1] == "mailed"


async def test_the_reassembly_timeout_counts_a_step_forward_as_no_time_passed(tmp_path: Path) -> None:
    # Parts 1 and 2 of a vote came; the clock stepped 8 days ahead a second later. The set read as
    # 8 days stale and was mailed with a gap at the next look, a minute later: part 3, sent by the
    # SMSC within the 5-minute timeout, followed as a late part in a mail of its own.
    w = PremiumWorld(tmp_path)
    w.service()
    mono = Monotonic()
    hk = Housekeeping(w.store, w.events.notifier, w.events, dict, Path("/nonexistent"), monotonic=mono)
    await hk.check_clock()
    passes(w, mono, TIMEOUT_SECONDS)  # the daemon has run for the timeout
    for seq in (1, 2):
        await vote(w, seq)
    await step_seen(w, mono, hk, 8 * DAY)
    passes(w, mono, 60.0)
    await hk.expire()
    assert charged(w) == []
    await vote(w, 3)
    assert charged(w) == [("mailed", 1, "KP123", 3, 900, 330, "long vote part one part two part three")]
    await vote(w, 1, ref=8)  # a set the SMSC does not complete: joined once the timeout has passed
    passes(w, mono, TIMEOUT_SECONDS + 1.0)
    await hk.expire()
    assert charged(w)[1][3:5] == (1, 300)


async def test_the_dashboards_day_of_unconfirmed_premium_sms_counts_a_step_forward_as_no_time_passed(
    tmp_path: Path,
) -> None:
    # A vote kept for an address not confirmed yet is named on the dashboard once it waited a day. An
    # hour after it came the clock stepped 8 days ahead, and the dashboard said "kept since" at once.
    w = PremiumWorld(tmp_path)
    w.service(verified=False)
    mono = Monotonic()
    hk = housekeeping(w.store, mono)
    await hk.check_clock()
    await w.mo("KP123 vote")
    conn = w.store.db.conn
    assert conn.execute("SELECT state FROM premium_mo").fetchall() == [("awaiting",)]
    passes(w, mono, HOUR)
    await step_seen(w, mono, hk, 8 * DAY)
    assert confirmation.stale(conn, None, w.now) == []
    passes(w, mono, DAY - HOUR)
    assert [u.password for u, _ in confirmation.stale(conn, None, w.now)] == ["KP123"]
