"""The queue's "an SMS due has waited" (10 min) after the wall clock stepped forward: the wait counts the
time that passed, a step forward within it none (`gateway.store.forwardsteps`), as the outbox's and the
reply windows do.

Read as stamped, an SMS accepted a minute before a step of 8 days (NTP setting right a clock 8 days
behind) "waited 8 days" right after it: `smsgw status` exited 1 ("trouble: an SMS due has waited 8
days"), /healthz and the dashboard said the queue stood, before it could have stood 10 minutes. The
daemon runs for real on a clock and a boot time the test moves (a step moves the clock alone, time
passing moves both); its only link's SMSC does not answer, so the SMS stays due.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.cli.status import QUEUE_STUCK_SECONDS
from gateway.store import forwardsteps
from gateway.store.queueage import queue_oldest
from smsc.outage import boottime
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway

DAY = 86400.0
MINUTE = 60.0


async def test_an_sms_due_before_a_step_forward_has_waited_the_time_that_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.5)  # the step is seen soon
    cfg = make_config(tmp_path, smsc_port=free_port())  # nothing listens: the link stays down
    skew, passed = [0.0], [0.0]
    clock, elapsed = (lambda: time.time() + skew[0]), (lambda: boottime() + passed[0])
    async with running_gateway(cfg, clock, elapsed) as gw:
        conn = gw.store.db.conn
        rcpt = f"600000001@{DOMAIN}"
        assert (await gw.send(mail([rcpt], "The plant is closed today"), [rcpt])).error is None
        await gw.until(lambda: queue_oldest(conn, clock()) is not None)
        (accepted,) = conn.execute("SELECT created_at FROM messages").fetchone()
        skew[0] = 8 * DAY  # the step: the clock alone moves
        await gw.until(lambda: forwardsteps.kept_steps(conn) != [])
        now = clock()
        oldest = queue_oldest(conn, now)
        assert oldest is not None and now - oldest < MINUTE, (now - accepted) / DAY  # not 8 days
        assert oldest == pytest.approx(accepted + 8 * DAY)  # when it came, on the clock as it reads now
        # 11 minutes pass (clock and boot time alike): now it has stood too long.
        skew[0] += 11 * MINUTE
        passed[0] += 11 * MINUTE
        now = clock()
        oldest = queue_oldest(conn, now)
        assert oldest is not None and QUEUE_STUCK_SECONDS < now - oldest < 12 * MINUTE, now - oldest
        assert len(forwardsteps.kept_steps(conn)) == 1  # time that passed, not a second step
