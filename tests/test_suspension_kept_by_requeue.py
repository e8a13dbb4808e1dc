"""A suspension holds the SMS its account had claimed ahead when the dispatcher's run crashes before
holding them: the requeue before the restart does not mark them as possibly sent.

Defect: `requeue_orphans` put them back through `recover_active`, noted RECOVERED (possibly sent),
a note a suspension leaves alone (`policy._may_hold`): they were claimed again and sent while the
account was suspended, each logged as a possible duplicate though never handed to a link. A part
handed to its link whose answer and hold the store refused is the one the requeue notes so.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway import suspensions
from gateway.store.db import Store
from tests.conftest import DOMAIN, mail, make_config, running_gateway
from tests.fakes.smsc import HeldSMSC
from tests.test_admin_stops_claimed import SMS, WINDOW, answer_all, claimed_ahead
from tests.test_claim_ahead import count


def end_fails_once(monkeypatch: pytest.MonkeyPatch, stops: str) -> list[bool]:
    """The dispatcher's end of its stopped parts (`Stops.end`) fails once, as a damaged page makes
    it, the first time it has parts of the kind `stops` ("held", "cancelled"): its run crashes there
    (no peer breaks a write on cue). The list returned is not empty once it has failed."""
    real = suspensions.Stops.end
    failed: list[bool] = []

    def damaged_once(self: suspensions.Stops, store: Store, end: Any) -> None:
        if getattr(self, stops) and not failed:
            failed.append(True)
            raise sqlite3.DatabaseError("database disk image is malformed")
        real(self, store, end)

    monkeypatch.setattr(suspensions.Stops, "end", damaged_once)
    return failed


async def test_a_suspension_holds_claimed_sms_through_the_dispatchers_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = end_fails_once(monkeypatch, "held")
    with structlog.testing.capture_logs() as logs:
        async with claimed_ahead(tmp_path) as (gw, smsc, _path):
            acme = gw.store.db.conn.execute("SELECT id FROM accounts WHERE name = 'acme'").fetchone()[0]
            await gw.store.write(lambda: gw.store.policy.suspend_account(acme, "spam"))
            await gw.until(lambda: any(e.get("event") == "worker.crashed" for e in logs))
            await answer_all(gw, smsc)
            await gw.until(lambda: gw.daemon.supervisor.snapshot()["dispatcher"]["state"] == "running")
            await answer_all(gw, smsc)
            assert failed
            sent = len(smsc.received)
            held = count(gw, "state = 'hold'")
    dups = [e for e in logs if e.get("event") == "mt.possible_duplicate"]
    assert sent == WINDOW and held == SMS - WINDOW, (sent, held)  # only the window on the wire went
    assert not dups, dups


async def test_a_part_whose_answer_and_hold_were_refused_goes_again_as_a_possible_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one part left `active` after the wait that may be at the SMSC: handed to its link, its answer
    # and then its hold refused by the store (`mt.hold_failed`). It alone keeps the recovered note.
    async with HeldSMSC() as smsc:
        async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
            dispatcher, queue = gw.daemon.dispatcher, gw.store.queue
            refused: list[str] = []

            def refuse_once(name: str) -> Callable[..., Any]:
                real = getattr(queue, name)

                def refusing(*args: Any, **kwargs: Any) -> Any:
                    if name not in refused:
                        refused.append(name)
                        raise sqlite3.DatabaseError("database disk image is malformed")
                    return real(*args, **kwargs)

                return refusing

            next_due_at = queue.next_due_at

            def crash_once() -> float | None:
                if dispatcher.handed_unwritten() and "next_due_at" not in refused:
                    refused.append("next_due_at")
                    raise RuntimeError("dispatcher fault")
                return next_due_at()

            with structlog.testing.capture_logs() as logs:
                assert (await gw.send(mail(f"601000001@{DOMAIN}", "Taken, not written"))).error is None
                await smsc.wait_for(1)
                for name in ("mark_submitted", "hold_part"):
                    monkeypatch.setattr(queue, name, refuse_once(name))
                monkeypatch.setattr(queue, "next_due_at", crash_once)
                smsc.answer(1)
                await smsc.wait_for(2)  # requeued before the restart, sent by the restarted run
                smsc.answer(1)
                await gw.until(lambda: gw.states() == ["submitted"])
    assert refused == ["mark_submitted", "hold_part", "next_due_at"]
    assert [e["ids"] for e in logs if e.get("event") == "dispatcher.recovered"] == [[1]]
    assert not [e for e in logs if e.get("event") == "dispatcher.requeued"]
    assert [e["part"] for e in logs if e.get("event") == "mt.possible_duplicate"] == [1]
