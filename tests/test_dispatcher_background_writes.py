"""A write the dispatcher starts and does not await (an opt-out's end of parts it had claimed ahead,
parts put back or settled) that fails with anything but passing store trouble ends the dispatcher's
run, so that the supervisor logs the crash and puts those parts back in the queue before its restart.

Defect: the task's done-callback only dropped it. A STOP from a phone whose SMS was claimed ahead,
its end's write failing once (a damaged page), left the part `active` for the rest of the run (not
sent, not ended, no bounce), the dispatcher "running" with no restart and no line in the log but
asyncio's "Task exception was never retrieved". Real daemon, real SMTP client, an SMPP SMSC over TCP
that answers only when the test says, the STOP a real MO from it, a real SQLite file; the failure is
injected (no peer makes a page go bad on demand).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import structlog

from gateway.backgroundwrites import BackgroundWrites
from gateway.store.db import ClaimedPart
from gateway.store.settling import OPTED_OUT
from tests.test_admin_stops_claimed import SMS, answer_all, claimed_ahead, claimed_not_sent, message
from tests.test_claim_ahead import count


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == name]


async def test_a_failed_write_of_an_opt_out_crashes_the_dispatcher_and_its_part_is_not_lost(
    tmp_path: Path,
) -> None:
    with structlog.testing.capture_logs() as logs:
        async with claimed_ahead(tmp_path) as (gw, smsc, _path):
            d = gw.daemon.dispatcher
            mid, number = claimed_not_sent(gw, smsc)[0]
            real = d._end_claimed
            failed: list[list[int]] = []

            def damaged_once(parts: list[ClaimedPart], state: str, reason: str) -> None:
                if not failed:
                    failed.append([p.id for p in parts])
                    raise sqlite3.DatabaseError("database disk image is malformed")
                real(parts, state, reason)

            d._end_claimed = damaged_once  # type: ignore[method-assign]
            await smsc.inject_mo(number, "+48100200300", "STOP")
            await gw.until(lambda: bool(_events(logs, "worker.crashed")))
            await answer_all(gw, smsc)  # the restart waits for the submits in flight to be answered
            await gw.until(lambda: gw.daemon.supervisor.snapshot()["dispatcher"]["state"] == "running")
            await answer_all(gw, smsc)

            assert failed, "the opt-out's write never ran"
            [gone] = _events(logs, "dispatcher.background_failed")
            assert gone["task"] == "dispatcher.opted_out" and "malformed" in gone["error"]
            [crashed] = _events(logs, "worker.crashed")
            assert crashed["worker"] == "dispatcher" and "malformed" in crashed["error"]
            assert gw.daemon.supervisor.snapshot()["dispatcher"]["restarts"] == 1
            # Put back by the requeue before the restart; the next claim ended it as opted out.
            assert count(gw, "state = 'active'") == 0
            state, reason = message(gw, mid)
            assert state == "failed" and OPTED_OUT in (reason or ""), (state, reason)
            sent = [s.destination for s in smsc.received]
            assert number not in sent, "an SMS to the opted-out number reached the SMSC"
            assert len(sent) == SMS - 1 and len(set(sent)) == SMS - 1  # the others went, once each


async def test_a_cancelled_write_is_no_failure_and_a_failure_is_raised_once() -> None:
    tasks: set[asyncio.Task[None]] = set()
    woken: list[bool] = []
    writes = BackgroundWrites(tasks, on_failure=lambda: woken.append(True))
    gate = asyncio.Event()

    async def waits() -> None:
        await gate.wait()

    async def fails() -> None:
        raise sqlite3.IntegrityError("UNIQUE constraint failed: parts.id")

    writes(waits(), "put_back")
    [pending] = tasks
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    assert not tasks and writes.failed is None and not woken
    writes(fails(), "settle_unsendable")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not tasks and woken == [True]
    try:
        writes.raise_failed()
    except sqlite3.IntegrityError as exc:
        assert "UNIQUE" in str(exc)
    else:
        raise AssertionError("the failure was not raised")
    writes.raise_failed()  # raised once: the restarted run starts clean
