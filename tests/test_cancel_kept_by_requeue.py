"""An admin's cancel of an SMS the dispatcher had claimed ahead holds when the dispatcher's run crashes
before ending it: the requeue before the restart keeps the cancel's note, and the claim ends the part.

Defect: `QueueRepo.recover_active` (the start's recovery and `requeue_orphans`) replaced each part's
note with RECOVERED, the cancel's CANCEL_ASKED with it: the part went back to the queue as any other
(and as a possible duplicate, though never handed to a link), was claimed, and reached the SMSC.
Real daemon, real SMTP client, an SMPP SMSC over TCP that answers only when the test says, a real
SQLite file; the dispatcher's end of the cancelled part is made to fail once (no peer breaks it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from tests.test_admin_stops_claimed import answer_all, claimed_ahead, claimed_not_sent, message
from tests.test_claim_ahead import count
from tests.test_suspension_kept_by_requeue import end_fails_once


async def test_a_cancel_of_a_claimed_sms_holds_through_the_dispatchers_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = end_fails_once(monkeypatch, "cancelled")
    with structlog.testing.capture_logs() as logs:
        async with claimed_ahead(tmp_path) as (gw, smsc, _path):
            mid, number = claimed_not_sent(gw, smsc)[0]
            await gw.store.write(lambda: gw.store.admin.cancel_message(mid, claimed="ask"))
            await gw.until(lambda: any(e.get("event") == "worker.crashed" for e in logs))
            await answer_all(gw, smsc)  # the restart waits for the submits in flight to be answered
            await gw.until(lambda: gw.daemon.supervisor.snapshot()["dispatcher"]["state"] == "running")
            await answer_all(gw, smsc)
            assert failed, "the dispatcher's end of the cancelled part never ran"
            assert count(gw, "state = 'active'") == 0
            sent = [s.destination for s in smsc.received]
            assert number not in sent, "an SMS an admin cancelled while it was claimed reached the SMSC"
            assert message(gw, mid)[0] == "cancelled"
