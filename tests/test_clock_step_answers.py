"""Answers from a phone after the wall clock stepped: they go to the SMS the phone got last.

The answer's match (`gateway.conversations.reached`) reads when each SMS went and when its mail was
accepted: a step back that left those on the old clock read an SMS sent before it as sent after one
sent after it, for the whole reply window. Runs on a real SQLite file with an injected clock and the
housekeeping's own clock check, below the network.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from billing_reports import mtlate
from billing_reports.repo import LAST_BILLED, BillingRepo
from gateway.housekeeping import Housekeeping
from tests.test_clock_step import HOUR, Monotonic, housekeeping
from tests.test_conversations import PHONE, T0, World

STEP = 60.0


def sent(w: World, user: str, text: str, phone: str = PHONE) -> None:
    """The user's mail accepted, and its SMS taken by the SMSC at once."""
    w.send(user, text=text, phone=phone)
    for p in w.store.queue.claim_due(10):
        w.store.queue.mark_submitted(p.id, "main", f"x{p.id}")


def other_company(w: World) -> None:
    w.store.accounts.add_account("other")
    w.store.accounts.add_user("bob@other.example", "other")


async def anna_sent_then_stepped_back(tmp_path: Path) -> tuple[World, Monotonic, Housekeeping]:
    """Anna (acme) texts the phone, Bob's company exists; 10 s later the clock steps back STEP, seen."""
    w = World(tmp_path)
    other_company(w)
    mono = Monotonic()
    hk = housekeeping(w.store, mono)
    await hk.check_clock()
    sent(w, "anna@acme.example", "ACME offer")
    w.now += 10.0 - STEP
    mono.t += 10.0
    assert await hk.check_clock() == pytest.approx(STEP)
    return w, mono, hk


@pytest.mark.parametrize("after", [120.0, 3 * 86400.0])
async def test_an_answer_after_a_step_back_goes_to_the_sms_sent_after_it(
    tmp_path: Path, after: float
) -> None:
    # Anna (acme) texts the phone; 10 s later NTP steps the clock back a minute; Bob (another company)
    # texts it. Once real time has passed the step, Bob's SMS read as sent before Anna's, and the phone's
    # answers to Bob went to Anna, quoting her SMS, on acme's bill, for the whole reply window.
    w, mono, hk = await anna_sent_then_stepped_back(tmp_path)
    w.now += 10.0
    mono.t += 10.0
    sent(w, "bob@other.example", "Other invoice 12 due")
    w.now += after
    mono.t += after
    await hk.check_clock()
    await w.mo("Invoice 12 paid")
    [(_kind, rcpt, msg)] = w.outbox()
    assert rcpt == "bob@other.example", (rcpt, msg.get_content())
    assert "Other invoice 12 due" in msg.get_content()


async def test_an_answer_before_a_step_back_is_seen_still_goes_to_the_sms_before_it(tmp_path: Path) -> None:
    # Anna texts the phone, the clock steps back, the phone answers her before Bob texts it: hers.
    w, mono, _hk = await anna_sent_then_stepped_back(tmp_path)
    w.now += 20.0
    mono.t += 20.0
    await w.mo("Yes")
    [(_kind, rcpt, _msg)] = w.outbox()
    assert rcpt == "anna@acme.example"


@pytest.mark.parametrize(("accepted", "crosses"), [((0, 20), True), ((1, 5), False)])
async def test_an_sms_moved_back_over_a_billed_months_end_bills_that_month_again(
    tmp_path: Path, accepted: tuple[int, int], crosses: bool
) -> None:
    # October billed; at 01:10 on November 1st the clock steps back an hour. An SMS accepted at 00:20
    # was really accepted at 23:20 on October 31st: its time moves there, into the month billed, which
    # is billed again. One accepted at 01:05 moves to 00:05 and stays in November.
    w = World(tmp_path)
    zone = ZoneInfo(w.config.gateway.timezone)  # type: ignore[attr-defined]

    def at(*args: int) -> float:
        return datetime(2027, 11, 1, *args, tzinfo=zone).timestamp()

    mono = Monotonic()
    notifier: Any = SimpleNamespace(config=w.config)  # check_clock reads the time zone off it
    unused: Any = None
    hk = Housekeeping(w.store, notifier, unused, dict, Path("/nonexistent"), monotonic=mono)
    await w.store.write(lambda: BillingRepo(w.store.db, w.store.clock).put(LAST_BILLED, "2027-10"))
    w.now = at(0, 0)
    await hk.check_clock()
    for until in (at(*accepted), at(1, 10)):
        mono.t += until - w.now
        w.now = until
        await hk.check_clock()
        if until == at(*accepted):
            w.send("anna@acme.example")
    w.now += 10.0 - HOUR
    mono.t += 10.0
    with capture_logs() as logs:
        assert await hk.check_clock() == pytest.approx(HOUR)
    created = w.store.db.conn.execute("SELECT created_at FROM messages").fetchone()[0]
    assert created == pytest.approx(at(*accepted) - HOUR)
    warned = [e["month"] for e in logs if e["event"] == "billing.month_to_bill_again"]
    assert warned == (["2027-10"] if crosses else [])


DAY = 86400.0


async def test_an_answer_after_a_step_forward_and_its_correction_goes_to_the_sms_sent_before_them(
    tmp_path: Path,
) -> None:
    # Anna texts the phone; a minute later the clock steps forward 8 days, and 30 s later back again
    # (a wrong correction, undone). The SMS sent before both keep their times (the step back undoes
    # the forward step's 8 days of the clock they were stamped on): her SMS, moved back 8 days, read as
    # past the 7-day window, and the answer went to the fallback address.
    w = World(tmp_path)
    mono = Monotonic()
    hk = housekeeping(w.store, mono)
    await hk.check_clock()
    sent(w, "anna@acme.example", "ACME offer")
    w.now += 60.0 + 8 * DAY
    mono.t += 60.0
    assert await hk.check_clock() == 0.0
    w.now += 30.0 - 8 * DAY
    mono.t += 30.0
    assert await hk.check_clock() == pytest.approx(8 * DAY)
    w.now += 60.0
    mono.t += 60.0
    await w.mo("Yes")
    [(_kind, rcpt, msg)] = w.outbox()
    assert rcpt == "anna@acme.example", (rcpt, msg.get_content())
    went = w.store.db.conn.execute("SELECT submitted_at FROM parts").fetchone()[0]
    assert went == pytest.approx(T0)


async def test_the_records_of_an_admins_retry_follow_its_sms_moved_by_a_step_back(tmp_path: Path) -> None:
    # An SMS failed and an admin sent it again: billing keeps what the retry ended under the SMS, told
    # as its own by its acceptance time. Moved by the step, the SMS kept its records: left with the old
    # time, they read as another SMS's given the same id, and its month's correction lines were lost.
    w = World(tmp_path)
    mono = Monotonic()
    notifier: Any = SimpleNamespace(config=w.config)
    unused: Any = None
    hk = Housekeeping(w.store, notifier, unused, dict, Path("/nonexistent"), monotonic=mono)
    await hk.check_clock()
    w.send("anna@acme.example")
    conn = w.store.db.conn

    def failed_and_retried() -> None:
        conn.execute("UPDATE parts SET state = 'failed'")
        conn.execute("UPDATE messages SET state = 'failed'")
        mtlate.retried(conn, 1, w.now)

    await w.store.write(failed_and_retried)
    w.now += 10.0 - HOUR
    mono.t += 10.0
    assert await hk.check_clock() == pytest.approx(HOUR)
    [(value,)] = conn.execute("SELECT value FROM billing_state WHERE key LIKE 'mt_retried/%'").fetchall()
    assert [r["c"] for r in json.loads(value)] == [T0 - HOUR]
    assert conn.execute("SELECT created_at FROM messages").fetchone()[0] == T0 - HOUR


async def test_a_step_back_moves_only_its_last_seconds_and_keeps_the_order_at_the_cut(tmp_path: Path) -> None:
    # Anna texts the phone; 40 s later Bob does, 100 s later Anna texts another phone; at 110 s the clock
    # steps back a minute. Only times from 70 s (the step, an answer's 5 s and 5 s more) before the last
    # SMS before the step move: Anna's first SMS, older, keeps its times (a write of every row a reply
    # window reaches held the daemon for seconds). Bob's, moved by the whole minute, would read before
    # hers, and the phone's answer would go to her: it is squeezed to just after the cut, still after hers.
    w = World(tmp_path)
    other_company(w)
    mono = Monotonic()
    hk = housekeeping(w.store, mono)
    await hk.check_clock()
    for wait, user, text, phone in (
        (0.0, "anna@acme.example", "ACME offer", PHONE),
        (40.0, "bob@other.example", "Other invoice 12 due", PHONE),
        (60.0, "anna@acme.example", "ACME elsewhere", "+48601999999"),
    ):
        w.now += wait
        mono.t += wait
        sent(w, user, text, phone)
        await hk.check_clock()  # the looks come every few seconds: no row is placed by its time
    w.now += 10.0 - STEP
    mono.t += 10.0
    assert await hk.check_clock() == pytest.approx(STEP)
    conn = w.store.db.conn
    times = conn.execute(
        "SELECT m.created_at, p.submitted_at FROM messages m JOIN parts p ON p.message_id = m.id ORDER BY 1"
    ).fetchall()
    cut = T0 + 100.0 - 5.0 - STEP - 5.0
    squeezed = cut + (T0 + 40.0 - cut) * 5.0 / (STEP + 5.0)
    assert [t for row in times for t in row] == pytest.approx(
        [T0, T0, *(squeezed,) * 2, *(T0 + 100.0 - STEP,) * 2], rel=0, abs=1e-6
    )
    assert T0 < squeezed < T0 + 100.0 - STEP
    last = conn.execute(
        "SELECT user_email, last_mt_at FROM conversations WHERE phone = ? ORDER BY 2", (PHONE,)
    )
    [(anna, at_anna), (bob, at_bob)] = last.fetchall()
    assert (anna, bob, at_anna) == ("anna@acme.example", "bob@other.example", T0)
    assert at_bob == pytest.approx(squeezed, rel=0, abs=1e-6)
    w.now += 3600.0
    mono.t += 3600.0
    await w.mo("Invoice 12 paid")
    [(_kind, rcpt, msg)] = w.outbox()
    assert rcpt == "bob@other.example", (rcpt, msg.get_content())
    assert "Other invoice 12 due" in msg.get_content()
