"""What an operator sees when the disk fills, another process locks the database, an SMSC throttles
every submit, or the relay comes back: /healthz, /metrics, `smsgw status` and systemd's STATUS=.

Each looked healthy against the real daemon: a full state_dir gave /healthz 200
and status 0 once no mail had come for 30 s; a database held by an sqlite3 shell read as a hung
daemon ("not answering") with worker crashes and tracebacks in the log; an SMSC answering every
submit with ESME_RTHROTTLED left nothing delivered while status exited 0 and /metrics had no
throttle count nor age of the queue.

Real peers throughout: the daemon with its SMTP listener and web server, the SMSC simulator over TCP,
`smsgw status` as a process, a second sqlite3 connection holding BEGIN EXCLUSIVE, a real
$NOTIFY_SOCKET. The free-space floor is a module setting the tests raise above the free space (no
tmpfs can be filled here).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import structlog.testing

from gateway.config import load_config
from gateway.housekeeping import read_status
from gateway.store import commit, trouble
from gateway.store.outboxhealth import outbox_health
from smsc.base import LinkState
from tests.conftest import DOMAIN, config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC, ThrottlingSMSC
from tests.test_faults import smtp_code, to
from tests.test_process import smsgw
from tests.test_status_exit import links_up
from tests.test_supervision import notify_socket, until
from tests.test_web_browser import WEB

MB = 1024 * 1024


def _config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=port, extra=WEB))
    config.chmod(0o640)
    return config


def _metric(text: str, name: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(name)]
    return float(line.rsplit(" ", 1)[1])


def test_the_floor_is_64_mb_or_one_percent_of_a_small_filesystem() -> None:
    assert trouble.space_low(63 * MB, 1000 * 1000 * MB)
    assert not trouble.space_low(65 * MB, 1000 * 1000 * MB)
    # A 20 MB tmpfs is not "full" while it has room: its floor is 1 % of it.
    assert not trouble.space_low(10 * MB, 20 * MB)
    assert trouble.space_low(100 * 1024, 20 * MB)
    assert trouble.space_low(0, 20 * MB)


async def test_a_nearly_full_state_dir_is_trouble_in_healthz_metrics_status_and_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The floor above the free space: the disk counts as nearly full.
    monkeypatch.setattr(trouble, "LOW_SPACE_BYTES", 1 << 62, raising=False)
    monkeypatch.setattr(trouble, "LOW_SPACE_FRACTION", 2.0, raising=False)
    async with HappySMSC() as smsc:
        config = _config(tmp_path, smsc.port)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(load_config(config)) as gw:
                await gw.until(lambda: gw.daemon.links["main"].state is LinkState.ACTIVE)
                state_dir = gw.config.state_dir
                await gw.until(
                    lambda: ((read_status(state_dir) or {}).get("disk") or {}).get("low", False), 10
                )
                base = f"http://127.0.0.1:{gw.daemon.web.port}"
                async with httpx.AsyncClient(base_url=base) as c:
                    health = await c.get("/healthz")
                    metrics = (await c.get("/metrics")).text
                res = await asyncio.to_thread(smsgw, config, "status")
    assert health.status_code == 503 and health.text.startswith("state_dir nearly full: "), health.text
    assert _metric(metrics, "smsgw_state_dir_free_bytes") > 0
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"disk      state_dir {state_dir} nearly full: " in res.stdout, res.stdout
    assert "free space there (old logs, backups) or grow the filesystem" in res.stdout
    warned = [e for e in logs if e["event"] == "store.disk_low"]
    assert len(warned) == 1, warned  # once per crossing, not at every look


async def test_a_database_locked_by_another_process_is_named_not_taken_for_a_hung_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trouble, "LOCK_SHOWN_SECONDS", 1.0, raising=False)
    notify = tmp_path / "notify"
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify))
    async with HappySMSC() as smsc, notify_socket(notify) as received:
        config = _config(tmp_path, smsc.port)
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(load_config(config)) as gw:
                await gw.until(lambda: links_up(gw.config.state_dir))
                gw.store.db.background_patience = 1.0  # the workers' writes give up within the test
                state_dir = gw.config.state_dir
                holder = sqlite3.connect(gw.config.db_path, isolation_level=None)
                holder.execute("BEGIN EXCLUSIVE")  # an sqlite3 shell left in a transaction
                try:
                    locked_at = time.time()
                    # A mail waits for the lock and gets 451 after its patience.
                    code = smtp_code(await gw.send(mail(to("601123456"), "while locked")))
                    await gw.until(lambda: "store_locked" in (read_status(state_dir) or {}), 15)
                    await asyncio.sleep(commit.BACKGROUND_PATIENCE_SECONDS / 10)
                    res = await asyncio.to_thread(smsgw, config, "status")
                    status = read_status(state_dir) or {}
                finally:
                    holder.execute("ROLLBACK")
                    holder.close()
                await until(lambda: "store_locked" not in (read_status(state_dir) or {}), 20)
    assert code == 451
    assert status["updated_at"] > locked_at + 2  # the status file goes on while the lock holds
    assert res.returncode == 1, res.stdout + res.stderr
    assert "daemon    running" in res.stdout and "not answering" not in res.stdout, res.stdout
    assert "store     database locked by another process since " in res.stdout, res.stdout
    assert "end the sqlite3 shell or the backup holding it" in res.stdout
    assert any("database locked by another process" in m for m in received if m.startswith("STATUS=")), (
        received
    )
    crashed = [e for e in logs if e["event"] == "worker.crashed"]
    assert not crashed, crashed  # a lock is no crash, and no traceback says anything about it
    assert not [e for e in logs if e.get("exc_info") and "locked" in str(e.get("exc_info"))]


async def test_an_smsc_throttling_every_submit_shows_in_metrics_and_status(
    tmp_path: Path,
) -> None:
    async with ThrottlingSMSC(accept_per_second=0.001) as smsc:
        config = _config(tmp_path, smsc.port)
        async with running_gateway(load_config(config)) as gw:
            await gw.until(lambda: links_up(gw.config.state_dir))
            numbers = [to(f"6011234{i:02d}") for i in range(4)]
            assert (await gw.send(mail(numbers, "throttled"), numbers)).error is None
            await gw.until(lambda: smsc.throttled >= 3, 30)
            store = gw.store
            # Accepted 20 min ago: the queue has stood that long (made old in the store, not waited).
            await store.write(
                lambda: store.db.conn.execute("UPDATE messages SET created_at = created_at - 1200")
            )
            await gw.until(
                lambda: (read_status(gw.config.state_dir) or {}).get("updated_at", 0) > time.time() - 1
            )
            base = f"http://127.0.0.1:{gw.daemon.web.port}"
            async with httpx.AsyncClient(base_url=base) as c:
                metrics = (await c.get("/metrics")).text
            res = await asyncio.to_thread(smsgw, config, "status")
    assert _metric(metrics, 'smsgw_link_throttled_total{link="main"}') >= 3
    assert _metric(metrics, "smsgw_queue_oldest_seconds") >= 1200
    assert res.returncode == 1, res.stdout + res.stderr
    assert "trouble: an SMS due has waited 20 min since " in res.stdout, res.stdout
    assert "link main: active, throttled " in res.stdout


async def test_the_relay_back_after_an_outage_is_not_said_to_defer_recipients(tmp_path: Path) -> None:
    async with HappySMSC(fail_suffixes=("13",)) as smsc:
        config = _config(tmp_path, smsc.port)
        async with running_gateway(load_config(config)) as gw:
            store = gw.store
            # The bounce cannot reach the relay (nobody listens on its port): Connection refused.
            assert (await gw.send(mail(f"601123413@{DOMAIN}", "to a phone that fails"))).error is None
            deferred = "SELECT id FROM outbox WHERE state = 'queued' AND last_error IS NOT NULL"
            await gw.until(lambda: store.db.conn.execute(deferred).fetchone() is not None, timeout=15)
            (mail_id,) = store.db.conn.execute(deferred).fetchone()

            def relay_back() -> None:
                # Queued an hour ago, and the relay has taken a mail since: it is back.
                conn = store.db.conn
                conn.execute("UPDATE outbox SET created_at = ? WHERE id = ?", (time.time() - 3600, mail_id))
                conn.execute(
                    "INSERT INTO outbox (kind, mail_from, rcpt, content, state, next_attempt_at, created_at,"
                    " sent_at) VALUES ('notice', '', 'x@example.com', x'', 'sent', 0, ?, ?)",
                    (time.time() - 60, time.time() - 30),
                )

            await store.write(relay_back)
            health = outbox_health(store.db.conn, time.time())
            res = await asyncio.to_thread(smsgw, config, "status")
    assert "the relay defers some recipients" not in res.stdout, res.stdout
    assert "the relay was unreachable for some mail, which goes after the relay answers a probe" in res.stdout
    assert health.relay_ok and health.relay_fault


def test_status_times_carry_their_zone(tmp_path: Path) -> None:
    # The logs are UTC; status printed [gateway] timezone without saying so: an hour apart.
    from gateway.cli import common, status

    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=1, timezone="Europe/Warsaw"))
    common.use_zone(load_config(config))
    try:
        assert status.when(1764842462.0) == "2025-12-04 11:01:02 +01:00"
        assert status.when(1751619662.0) == "2025-07-04 11:01:02 +02:00"
    finally:
        common._zone = None


async def test_systemd_status_keeps_the_queue_and_names_the_stall_until_it_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # STATUS= had two writers: the supervisor's "watchdog withheld" was overwritten by the
    # housekeeping's line within the second, and its "running" after the stall stayed, without
    # queue or links, until the housekeeping's line changed.
    from gateway import supervisor
    from gateway.dispatcher import Dispatcher
    from tests.conftest import free_port, make_config

    hung, release = asyncio.Event(), asyncio.Event()
    original = Dispatcher._wait

    async def hang_once(self: Dispatcher, timeout: float) -> bool:
        if not release.is_set():
            hung.set()
            await release.wait()
            return False
        return await original(self, timeout)

    monkeypatch.setattr(Dispatcher, "_wait", hang_once)
    monkeypatch.setattr(supervisor, "STALL_AFTER_SECONDS", 3.0)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    path = tmp_path / "notify"
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    async with (
        notify_socket(path) as received,
        running_gateway(make_config(tmp_path, smsc_port=free_port())) as gw,
    ):
        await asyncio.wait_for(hung.wait(), 20)
        await until(lambda: any(m.startswith("STATUS=watchdog withheld") for m in received))
        withheld_at = next(i for i, m in enumerate(received) if m.startswith("STATUS=watchdog withheld"))
        await asyncio.sleep(3 * 2.0)  # the housekeeping's turns: its line must not drop the stall
        during = [m for m in received[withheld_at:] if m.startswith("STATUS=")]
        release.set()
        await until(lambda: gw.daemon.supervisor.stalled() == [])
        expected = "STATUS=queued 0, links up 0/1, outbox 0"
        # The housekeeping's next turn says the dispatcher runs again: its line, whole.
        await until(lambda: [m for m in received if m.startswith("STATUS=")][-1] == expected, 10)
        await asyncio.sleep(2.5)  # and nothing writes over it
        after = [m for m in received if m.startswith("STATUS=")][-1]
    assert all(m.startswith("STATUS=watchdog withheld, stalled: dispatcher") for m in during), during
    assert "; queued 0, links up 0/1, outbox 0" in during[0], during
    assert after == expected, received[-12:]


def test_systemd_status_line_names_a_lock_a_full_disk_and_a_stuck_relay() -> None:
    from gateway.housekeeping import status_line

    status = {
        "queued": 2,
        "outbox": 5,
        "links": {"a": {"state": "active"}},
        "store_locked": {"for_seconds": 12.0},
        "disk": {"free_bytes": 0, "total_bytes": 20 * MB, "floor_bytes": 200_000, "low": True},
        "relay_stuck": {"for_seconds": 2000.0, "said": "Connection refused"},
    }
    assert status_line(status) == (
        "queued 2, links up 1/1, outbox 5, database locked by another process, state_dir nearly full,"
        " relay not taking mail"
    )
