"""The outbox's "mail stuck for the relay" (30 min) after the wall clock stepped forward: each wait counts
the time that passed, a step forward within it none (`gateway.store.forwardsteps`), as the reply windows
count it.

Counted as passed, a step of 8 days (NTP setting right a clock 8 days behind) made the mail queued a
minute before it "waited 8 days": `smsgw status` exited 1 with "trouble: mail has waited over 30 min",
the dashboard and the systemd status line said the relay was down, until the mail went. The daemon runs
for real on a clock and a boot time the test moves (a step moves the clock alone, time passing moves
both), its outbox against a relay port nothing listens on; the figures are read off a real SQLite file.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.cli.statusrelay import outbox_json, outbox_lines, outbox_trouble
from gateway.statusfile import read_status
from gateway.store import forwardsteps
from gateway.store.db import Store
from gateway.store.outboxhealth import outbox_health
from smsc.outage import boottime
from tests.conftest import free_port, make_config, running_gateway

DAY = 86400.0
MINUTE = 60.0
REFUSED = "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 2525)"


def test_mail_queued_before_a_step_forward_is_as_old_as_the_time_passed(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    store = Store.open(tmp_path / "db.sqlite", clock=lambda: now[0])
    try:
        conn = store.db.conn
        mail = store.outbox.enqueue_mail("bounce", "", "alice@example.com", b"Subject: x\r\n\r\nx\r\n")
        (claimed,) = store.outbox.claim_mail(1)
        assert claimed.id == mail
        store.outbox.finish_mail(mail, "queued", REFUSED, retry_in=30.0)  # the relay is down
        # A minute later the clock steps 8 days forward; a minute after that, status looks.
        forwardsteps.record_forward(conn, now[0] + MINUTE + 8 * DAY, 8 * DAY)
        now[0] += 2 * MINUTE + 8 * DAY
        health = outbox_health(conn, now[0])
        assert health.stuck_for(now[0]) is None and not outbox_trouble(health, now[0])
        assert outbox_json(health, now[0])["oldest_age_seconds"] == pytest.approx(2 * MINUTE)
        lines = outbox_lines(health, now[0])
        assert lines == ["outbox    1 mail(s) waiting, oldest 2 min old (see `smsgw outbox list`)"], lines
        assert health.waited(now[0]) == pytest.approx(2 * MINUTE)
        # 31 minutes of time passed since it was queued: the relay has taken nothing for that long.
        now[0] += 29 * MINUTE
        health = outbox_health(conn, now[0])
        assert health.stuck_for(now[0]) == pytest.approx(31 * MINUTE)
        assert outbox_trouble(health, now[0])
        assert "trouble: mail has waited over 30 min for the relay" in outbox_lines(health, now[0])[1]
    finally:
        store.close()


async def test_the_daemon_calls_the_relay_stuck_after_30_min_that_passed_not_after_a_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.5)  # its status file, written often
    cfg = make_config(tmp_path, smsc_port=free_port(), relay_port=free_port())  # no relay listens there
    skew, passed = [0.0], [0.0]
    clock, elapsed = (lambda: time.time() + skew[0]), (lambda: boottime() + passed[0])
    async with running_gateway(cfg, clock, elapsed) as gw:
        conn = gw.store.db.conn

        def written_since(at: float) -> dict[str, object] | None:
            status = read_status(cfg.state_dir)
            return status if status is not None and float(status["updated_at"]) > at else None

        await gw.store.write(
            lambda: gw.store.outbox.enqueue_mail(
                "bounce", "", "alice@example.com", b"Subject: x\r\n\r\nx\r\n"
            )
        )
        gw.store.outbox.on_queued()
        await gw.until(lambda: conn.execute("SELECT last_error FROM outbox").fetchone()[0] is not None)
        skew[0] = 8 * DAY  # the step: the clock alone moves
        await gw.until(lambda: forwardsteps.kept_steps(conn) != [])
        at = time.time()  # (the status file stamps its writes on the real clock)
        await gw.until(lambda: written_since(at) is not None)
        status = written_since(at)
        assert status is not None and status["outbox"] == 1
        assert "relay_stuck" not in status, status["relay_stuck"]
        # 31 minutes pass (clock and boot time alike): now the relay has taken nothing for too long.
        skew[0] += 31 * MINUTE
        passed[0] += 31 * MINUTE
        at = time.time()  # (the status file stamps its writes on the real clock)
        await gw.until(lambda: (written_since(at) or {}).get("relay_stuck") is not None)
        stuck = (written_since(at) or {})["relay_stuck"]
        assert 31 * MINUTE <= stuck["for_seconds"] < 40 * MINUTE, stuck  # type: ignore[index]
        assert len(forwardsteps.kept_steps(conn)) == 1  # time that passed, not a second step
