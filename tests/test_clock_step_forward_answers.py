"""Answers from a phone after the wall clock stepped forward by days: the window counts the time passed.

A step forward of the wall clock (NTP correcting a clock days behind, an admin setting the date) makes
every SMS sent before it read older by the step. Their reply windows count real time: the step is
remembered (`gateway.store.forwardsteps`) and counted as not elapsed, instead of moving every row a
window reaches. Runs the daemon against an SMPP SMSC over TCP and a real relay, on a wall clock the test
steps and the real boot time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway import housekeeping as housekeeping_module
from gateway.conversations import kept as kept_answers
from gateway.conversations import states
from gateway.conversations.queries import conversations_page
from gateway.housekeeping import Housekeeping
from gateway.store import forwardsteps
from smsc.outage import boottime
from tests.conftest import STAFF, Sink, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_clock_step import DAY, HOUR, Monotonic, housekeeping, on_a_stepping_clock, to
from tests.test_clock_step_answers import sent
from tests.test_conversations import World

PHONE = "601117002"


def mo_states(gw: Any) -> list[str]:
    return [r[0] for r in gw.store.db.conn.execute("SELECT state FROM mo ORDER BY id")]


async def test_an_answer_after_a_step_forward_of_days_goes_to_the_sms_sent_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Anna texts the phone; a minute later NTP steps the clock 8 days ahead (it was behind), and the
    # phone answers. Her SMS read 8 days old, past the 7-day reply window: the answer went to the
    # fallback address.
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.5)  # the step is seen soon
    relay = free_port()
    clock, smsc_port, cfg = on_a_stepping_clock(tmp_path, relay_port=relay)
    sink = Sink()
    with capture_logs() as logs:
        async with (
            HappySMSC(port=smsc_port) as smsc,
            smtp_sink(relay, sink),
            running_gateway(cfg, clock, boottime) as gw,
        ):
            assert (await gw.send(mail(to(PHONE), "Anna's offer"))).error is None
            await smsc.wait_for(1)
            await asyncio.sleep(1.0)  # the clock check has a reading from after the SMS went
            clock.offset += 8 * DAY
            await gw.until(lambda: any(e["event"] == "clock.stepped_forward" for e in logs))
            await asyncio.sleep(5.0)  # no phone answers an SMS within seconds of its going
            await smsc.inject_mo("48" + PHONE, "48100200300", "Yes please")
            await gw.until(lambda: mo_states(gw) not in ([], ["new"]))
            assert mo_states(gw) == ["mailed"], list(gw.store.db.conn.execute("SELECT note FROM mo"))
            await sink.wait(1)
    [(_mail_from, rcpts, raw)] = sink.messages
    assert rcpts == [STAFF], (rcpts, raw[-400:])


async def step_seen(w: World, mono: Monotonic, hk: Housekeeping, seconds: float) -> None:
    """A second passes in which the clock steps `seconds` ahead; the clock check sees it."""
    w.now += 1.0 + seconds
    mono.t += 1.0
    await hk.check_clock()


async def looking(tmp_path: Path) -> tuple[World, Monotonic, Housekeeping]:
    w = World(tmp_path)
    mono = Monotonic()
    hk = housekeeping(w.store, mono)
    await hk.check_clock()
    return w, mono, hk


def passes(w: World, mono: Monotonic, seconds: float) -> None:
    w.now += seconds
    mono.t += seconds


async def answered_before_a_step(tmp_path: Path, *texts: str) -> tuple[World, Monotonic, list[str]]:
    """Anna's SMS goes; a minute later the phone answers `texts` (2 an hour are mailed, the rest kept),
    and a second later the clock steps 8 days ahead, seen by the clock check. Returns the MOs' states
    before the step too."""
    w = World(tmp_path, "mails_per_phone_per_hour = 2")
    mono = Monotonic()
    hk = housekeeping(w.store, mono)
    await hk.check_clock()
    sent(w, STAFF, "Anna's offer")
    passes(w, mono, 60.0)
    for text in texts:
        await w.mo(text)
    before = w.mo_states()
    await step_seen(w, mono, hk, 8 * DAY)
    return w, mono, before


async def test_a_step_forward_counts_as_no_time_in_the_reply_window(tmp_path: Path) -> None:
    # Anna's SMS goes, 6 days pass, the clock steps 8 days ahead: 12 hours later (6.5 days after her
    # SMS went, 14.5 by the clock) the answer is hers; a day later (7.5 days) past her window.
    w, mono, hk = await looking(tmp_path)
    sent(w, STAFF, "Anna's offer")
    passes(w, mono, 6 * DAY)
    await step_seen(w, mono, hk, 8 * DAY)
    passes(w, mono, DAY / 2)
    await w.mo("Yes please")
    passes(w, mono, DAY)
    await w.mo("Too late")
    assert w.mo_states() == ["mailed", "unmatched"]


async def test_an_sms_sent_after_a_step_forward_has_its_window_as_before(tmp_path: Path) -> None:
    # Bob texts the phone, the clock steps 8 days ahead, the phone answers Bob. A minute later Anna texts
    # it, and the phone answers 7 days and a minute after that: the step was before her SMS, and her
    # window is not the longer for it (nor is Bob's, which ended meanwhile).
    w, mono, hk = await looking(tmp_path)
    sent(w, "bob@acme.example", "Bob's offer")
    await step_seen(w, mono, hk, 8 * DAY)
    await w.mo("Bob: yes")
    passes(w, mono, 60.0)
    sent(w, STAFF, "Anna's offer")
    passes(w, mono, 7 * DAY + 60.0)
    await w.mo("Anna: too late")
    assert w.mo_states() == ["mailed", "unmatched"]
    assert [rcpt for _kind, rcpt, _msg in w.outbox()] == ["bob@acme.example"]


async def test_a_step_back_correcting_a_step_forward_undoes_it_for_the_reply_window(tmp_path: Path) -> None:
    # Anna's SMS goes; the clock runs 8 days ahead for an hour (a wrong NTP answer), the phone answering
    # meanwhile, and is put right. Her SMS reads as old as it is again: the step forward no longer
    # counts, and 7 days and a minute after it went the answer is past her window.
    w, mono, hk = await looking(tmp_path)
    sent(w, STAFF, "Anna's offer")
    await step_seen(w, mono, hk, 8 * DAY)
    passes(w, mono, HOUR)
    await w.mo("While ahead")
    await step_seen(w, mono, hk, -8 * DAY)
    passes(w, mono, 7 * DAY - HOUR - 60.0)
    await w.mo("Within it")
    passes(w, mono, 120.0)
    await w.mo("Past it")
    assert w.mo_states() == ["mailed", "mailed", "unmatched"]


async def test_two_steps_forward_both_count(tmp_path: Path) -> None:
    # Two steps of 5 days ahead an hour apart, the answer a day after the SMS went.
    w, mono, hk = await looking(tmp_path)
    sent(w, STAFF, "Anna's offer")
    await step_seen(w, mono, hk, 5 * DAY)
    passes(w, mono, HOUR)
    await step_seen(w, mono, hk, 5 * DAY)
    passes(w, mono, DAY)
    await w.mo("Yes please")
    assert w.mo_states() == ["mailed"]


async def test_a_damaged_record_of_the_steps_reads_as_none(tmp_path: Path) -> None:
    # The steps are kept in the store's key/value table, which an admin may edit by hand: a value that
    # is no JSON failed every answer's match (malformed JSON) instead of counting no step.
    w, mono, hk = await looking(tmp_path)
    sent(w, STAFF, "Anna's offer")
    await step_seen(w, mono, hk, 8 * DAY)
    w.store.db.conn.execute("UPDATE billing_state SET value = '[[1, ' WHERE key = 'clock_forward'")
    w.store.db.conn.commit()
    await w.mo("Yes please")
    assert w.mo_states() == ["unmatched"]
    await step_seen(w, mono, hk, DAY)  # the next step writes a whole value again, with itself only
    assert forwardsteps.kept_steps(w.store.db.conn) == [(w.now, DAY)]


async def test_the_conversation_list_counts_a_step_forward_as_the_answers_do(tmp_path: Path) -> None:
    # `conversation list` and the panel said "closed" for a conversation whose answers went to its user:
    # they counted the window from the clock, steps and all.
    w, mono, hk = await looking(tmp_path)
    sent(w, STAFF, "Anna's offer")
    await step_seen(w, mono, hk, 8 * DAY)
    rows = conversations_page(w.store.db.conn, None, limit=10)
    assert states.listed(w.config, w.store.db.conn, rows, {}, w.now) == ["open"]
    passes(w, mono, 7 * DAY)
    assert states.listed(w.config, w.store.db.conn, rows, {}, w.now) == ["closed"]


async def test_answers_kept_past_the_hourly_limit_before_a_step_forward_are_still_mailed(
    tmp_path: Path,
) -> None:
    # Three answers within a minute, the third kept by the limit of 2 an hour; the clock steps 8 days
    # ahead. Received "8 days ago", the kept answer was past the window its digest is read in, and was
    # never mailed, nor said to be kept.
    w, mono, before = await answered_before_a_step(tmp_path, "Tak", "Będę", "Jednak o 11")
    assert before == ["mailed", "mailed", "throttled"]
    passes(w, mono, HOUR)
    assert await w.store.write(lambda: kept_answers.mail_due(w.store, w.config)) == 1  # type: ignore[arg-type]
