"""An SMS accepted between a step forward of the wall clock and the look that finds it: stamped on the
stepped clock, it waited no part of the step.

The step was kept at the look's reading, up to a look's seconds after the step, and an SMS stamped on
the stepped clock before it was taken for one from before the step: `queue_oldest` added the whole step
to its acceptance, its age read minus 8 days after a step of 8 days (`smsgw status`: "oldest -673201 s
old"), and the queue that held it was not said stuck for those 8 days. The step is kept at the earliest
reading the stepped clock can have had (the last look's, stepped). The daemon runs for real on a clock
and a boot time the test moves; its looks wait for the test, which makes the one that finds the step
after the SMS is accepted.
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


async def test_an_sms_accepted_after_a_step_forward_and_before_its_look_waited_none_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 3600.0)  # one look at the start, then ours
    cfg = make_config(tmp_path, smsc_port=free_port())  # nothing listens: the link stays down
    skew, passed = [0.0], [0.0]
    clock, elapsed = (lambda: time.time() + skew[0]), (lambda: boottime() + passed[0])
    async with running_gateway(cfg, clock, elapsed) as gw:
        conn, hk = gw.store.db.conn, gw.daemon.housekeeping
        await gw.until(lambda: hk.steps.last is not None)  # the start's look: the reading a step is told by
        skew[0] = 8 * DAY  # the step: the clock alone moves
        rcpt = f"600000001@{DOMAIN}"
        assert (await gw.send(mail([rcpt], "The plant is closed today"), [rcpt])).error is None
        await gw.until(lambda: conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1)
        (accepted,) = conn.execute("SELECT created_at FROM messages").fetchone()
        await hk.check_clock()  # the look that finds the step, after the SMS came on the stepped clock
        assert [seconds for _, seconds in forwardsteps.kept_steps(conn)] == [pytest.approx(8 * DAY, abs=5)]
        now = clock()
        oldest = queue_oldest(conn, now)
        assert oldest == pytest.approx(accepted, abs=0.001), (oldest or 0) - accepted  # 691200 s later before
        assert 0 <= now - oldest < MINUTE
        # 11 minutes pass (clock and boot time alike): now it has stood too long.
        skew[0] += 11 * MINUTE
        passed[0] += 11 * MINUTE
        now = clock()
        oldest = queue_oldest(conn, now)
        assert oldest is not None and QUEUE_STUCK_SECONDS < now - oldest < 12 * MINUTE, now - oldest


def test_mail_queued_on_the_stepped_clock_before_the_look_waited_the_time_since(tmp_path: Path) -> None:
    # The outbox's oldest mail, queued a second after a step of 8 days that the look found 2 s after
    # the step, the relay down since: five hours on it has waited five hours (it read minus 8 days,
    # and the relay was not said stuck), and a step back of a day after it keeps it so.
    from gateway.cli.statusrelay import outbox_json
    from gateway.store.db import Store
    from gateway.store.outboxhealth import STUCK_SECONDS, outbox_health

    t = 1_800_000_000.0  # the clock right after the step
    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn = store.db.conn
        conn.execute(
            "INSERT INTO outbox (kind, mail_from, rcpt, content, next_attempt_at, created_at, last_error)"
            " VALUES ('notify', 'a@b', 'c@d', x'00', ?, ?, '421 relay down')",
            (t + 3600, t + 1),
        )
        forwardsteps.record_forward(conn, t + 2.0, 8 * DAY, t)
        conn.commit()
        now = t + 5 * 3600
        mail = outbox_health(conn, now)
        assert mail.waited(now) == pytest.approx(5 * 3600 - 1)
        assert (mail.stuck_for(now) or 0) > STUCK_SECONDS
        assert outbox_json(mail, now)["oldest_age_seconds"] == pytest.approx(5 * 3600 - 1)
        forwardsteps.record_back(conn, DAY)  # the stepped clock, and what was stamped on it, a day back
        conn.execute("UPDATE outbox SET created_at = created_at - ?", (DAY,))
        assert outbox_health(conn, now - DAY).waited(now - DAY) == pytest.approx(5 * 3600 - 1)
    finally:
        store.close()
