"""A relay probe that ends with an error ends the outbox worker, logged, for the supervisor to start
both again, rather than ending unseen while the worker goes on.

Defect: the probe's task was read only when the worker ended, its error swallowed with the cancel
of the others. With a capture directory for `[mail] relay`, its one wake-up at the start (the mail
deferred for the old relay goes now) that failed left that mail waiting out its back-off of most of
an hour, with no word in the log. The daemon with a capture directory, an SMPP SMSC over TCP, a real
database file; the wake-up's write is made to fail once (no peer breaks it on demand).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway import relayprobe
from gateway.config import load_config
from gateway.store.outbox import OutboxRepo
from tests.conftest import config_text, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_relay_back_probe import events
from tests.test_relay_fixed_restart import deferred_outbox


async def test_a_failed_wake_up_at_the_start_ends_the_outbox_worker_and_its_restart_sends_the_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured = tmp_path / "captured"
    real = relayprobe.probe_relay_faults
    calls: list[bool] = []

    def fails_once(outbox: OutboxRepo, *, probed: bool = False) -> int | None:
        calls.append(probed)
        if len(calls) == 1:
            raise sqlite3.IntegrityError("CHECK constraint failed: outbox")
        return real(outbox, probed=probed)

    monkeypatch.setattr(relayprobe, "probe_relay_faults", fails_once)
    async with HappySMSC() as smsc:
        config = tmp_path / "config.toml"
        text = config_text(tmp_path, smsc_port=smsc.port)
        config.write_text(re.sub(r'relay = "127\.0\.0\.1:\d+"', f'relay = "maildir:{captured}"', text))
        cfg = load_config(config)
        assert cfg.mail.capture_dir is not None
        down, grey = deferred_outbox(cfg)  # most of an hour still to wait, each
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                conn = gw.store.db.conn
                sent = "SELECT count(*) FROM outbox WHERE state = 'sent'"
                await gw.until(lambda: conn.execute(sent).fetchone()[0] == 3)
                worker: dict[str, Any] = gw.daemon.supervisor.snapshot()["outbox"]
                rows = dict(conn.execute("SELECT id, state FROM outbox").fetchall())
    assert calls == [False, False]  # the failed wake-up, and the restarted worker's
    (ended,) = events(logs, "outbox.relay_probe_ended")
    assert "CHECK constraint failed" in ended["error"]
    (crashed,) = events(logs, "worker.crashed")
    assert crashed["worker"] == "outbox" and "CHECK constraint failed" in crashed["error"]
    assert worker["restarts"] == 1 and worker["state"] == "running"
    assert [rows[m] for m in down] == ["sent"] * 3
    assert rows[grey] == "queued"  # the recipient's greylisting: its back-off is its own
    files = sorted(p.read_bytes().split(b"\n")[1] for p in captured.glob("*.eml"))
    assert files == [f"Delivered-To: u{n}@acme.example".encode() for n in range(3)]
