"""A reader that pins the WAL is told to the operator: a warning, `smsgw status`, systemd's STATUS=.

An sqlite3 shell left in a transaction (or a long report, a backup) holds an old snapshot: no
checkpoint can cut the WAL, which grew ~85 KB a mail (132 MB in 25 s of load) while the only
trace was an INFO `store.checkpointed ... busy=1` every 5 s, and status stayed green until the
disk filled. The reader here is a real second SQLite connection holding a read transaction on the
daemon's database; the thresholds are the module's constants, made small.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import structlog.testing

from gateway import housekeeping
from gateway.config import load_config
from gateway.housekeeping import Housekeeping, read_status
from gateway.store import checkpoint, walpin
from tests.conftest import Running, config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw
from tests.test_supervision import events, notify_socket, to, until
from tests.test_wal_checkpoint import LIMIT, small_wal_store, write_round


def pinned_status(gw: Running) -> dict[str, Any] | None:
    return (read_status(gw.config.state_dir) or {}).get("wal_pinned")


async def test_a_reader_pinning_the_wal_is_warned_of_shown_and_cleared_when_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # raising=False: set where the module has them (a renamed one leaves the default, and the test fails).
    monkeypatch.setattr(walpin, "WAL_PINNED_WARN_SECONDS", 1.0, raising=False)
    monkeypatch.setattr(checkpoint, "PINNED_RETRY_SECONDS", 0.3)
    monkeypatch.setattr(checkpoint, "BUSY_MS", 100)
    monkeypatch.setattr(housekeeping, "STATUS_INTERVAL", 0.2)
    notify = tmp_path / "notify"
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify))
    config = tmp_path / "config.toml"
    with structlog.testing.capture_logs() as logs:
        async with HappySMSC() as smsc, notify_socket(notify) as received:
            config.write_text(config_text(tmp_path, smsc_port=smsc.port))
            async with running_gateway(load_config(config)) as gw:
                gw.store.db.limit_wal(LIMIT)
                wal = Path(f"{gw.store.db.path}-wal")
                reader = sqlite3.connect(gw.store.db.path, isolation_level=None)
                with closing(reader):
                    reader.execute("BEGIN")
                    reader.execute("SELECT COUNT(*) FROM messages").fetchone()  # an old snapshot, held
                    deadline = time.monotonic() + 20
                    for i in range(10_000):
                        if events(logs, "store.wal_pinned") or time.monotonic() > deadline:
                            break
                        res = await gw.send(mail(to(f"60100{i:04d}"), f"Mail {i} " + "x" * 600))
                        assert res.error is None
                    warnings = events(logs, "store.wal_pinned")
                    assert len(warnings) == 1, "the pinned WAL was not warned of"
                    warning = warnings[0]
                    assert warning["log_level"] == "warning"
                    # Said past 1.0 s, rounded to a tenth: 1.03 s reads 1.0.
                    assert warning["for_seconds"] >= 1.0 and warning["wal_bytes"] > 4 * LIMIT, warning

                    await gw.until(lambda: pinned_status(gw) is not None, 10)
                    res = await asyncio.to_thread(smsgw, config, "status")
                    assert res.returncode == 1, res.stdout + res.stderr
                    assert "store     WAL pinned since " in res.stdout, res.stdout
                    assert "a reader holds an old snapshot" in res.stdout
                    await until(lambda: any("WAL pinned by a reader" in m for m in received), 10)
                    said = [m for m in received if m.startswith("STATUS=")]
                    assert said[-1].startswith("STATUS=queued ") and said[-1].endswith(
                        ", WAL pinned by a reader"
                    ), said

                    # More TRUNCATEs held off within the minute: still the one warning.
                    for i in range(10):
                        assert (await gw.send(mail(to(f"60200{i:04d}"), "More " + "y" * 600))).error is None
                    await asyncio.sleep(1.0)
                    assert len(events(logs, "store.wal_pinned")) == 1
                    assert os.stat(wal).st_size > 4 * LIMIT

                # The reader gone and no mail coming: the next look finds it, cuts the WAL, says so.
                await gw.until(lambda: bool(events(logs, "store.wal_unpinned")), 10)
                [ended] = events(logs, "store.wal_unpinned")
                assert ended["log_level"] == "info" and ended["for_seconds"] >= 1.0
                await gw.until(lambda: os.stat(wal).st_size < LIMIT, 10)
                await gw.until(lambda: pinned_status(gw) is None, 10)
                await until(lambda: "WAL pinned" not in [m for m in received if m.startswith("STATUS=")][-1])
                res = await asyncio.to_thread(smsgw, config, "status")
                assert "WAL pinned" not in res.stdout, res.stdout
                assert res.returncode == 0, res.stdout + res.stderr


async def test_a_pinned_wal_past_the_size_bound_is_warned_of_at_once_and_cleared_with_no_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A heavy load fills the disk long before 30 s are up: the size alone is reason to warn. And once
    # the reader has gone on a quiet evening, no commit starts the TRUNCATE that would find it gone:
    # the housekeeping worker's look does, or the warning would stand until the next mail.
    monkeypatch.setattr(checkpoint, "BUSY_MS", 100)
    monkeypatch.setattr(walpin, "WAL_PINNED_WARN_BYTES", 8 * LIMIT, raising=False)
    monkeypatch.setattr(checkpoint, "PINNED_RETRY_SECONDS", 0.05)  # each commit's TRUNCATE looks
    store, wal = await small_wal_store(tmp_path)
    worker = Housekeeping(store, None, None, dict, tmp_path / "status.json")  # type: ignore[arg-type]
    try:
        with structlog.testing.capture_logs() as logs:
            with closing(sqlite3.connect(store.db.path)) as reader:
                reader.execute("BEGIN")
                reader.execute("SELECT COUNT(*) FROM t").fetchone()
                for _round in range(40):  # about 6 MB past the snapshot
                    await write_round(store)
                await store.drain()
                while store.db._checkpoint_task is not None:
                    await asyncio.sleep(0.01)
                warnings = events(logs, "store.wal_pinned")
                assert len(warnings) == 1, "the pinned WAL past the size bound was not warned of"
                assert warnings[0]["wal_bytes"] > 8 * LIMIT and warnings[0]["for_seconds"] < 30.0
                assert worker.store_status()["wal_pinned"]["wal_bytes"] == os.stat(wal).st_size
            # The reader gone, nothing written: the worker's looks (every STATUS_INTERVAL) clear it.
            for _look in range(100):
                if worker.store_status()["wal_pinned"] is None:
                    break
                await asyncio.sleep(0.05)
            assert worker.store_status()["wal_pinned"] is None
            assert [e["log_level"] for e in events(logs, "store.wal_unpinned")] == ["info"]
            assert os.stat(wal).st_size == 0  # the TRUNCATE that found it gone
    finally:
        store.close()
