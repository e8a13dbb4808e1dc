"""`smsgw status --json`, systemd's STATUS= and /healthz say why they report trouble.

Each reported trouble without its reason: `status --json` exited 1 for an exclusive
prefix whose link was down, or a premium answer pinned to a link down, with nothing in the JSON
naming either; it gave `"daemon": null` where the text said "not answering: pid … last wrote …";
and with no database it printed nothing at all. STATUS= said "links up 1/2" as for a harmless
spare link down, never the prefix whose SMS waited nor a queue standing. /healthz during a
database lock answered with a class name (`StoreBusy`) where status said what holds it.

Real peers: the daemon with its SMTP listener and web server, SMSC simulators over TCP, `smsgw
status` as a process, /healthz over HTTP, a $NOTIFY_SOCKET the test listens on, a second sqlite3
connection holding BEGIN EXCLUSIVE.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import housekeeping, statuswaits
from gateway.config import load_config
from gateway.housekeeping import STATUS_FILE, read_status
from tests.conftest import config_text, free_port, mail, running_gateway, smsc_link
from tests.fakes.smsc import HappySMSC, ThrottlingSMSC
from tests.test_faults import to
from tests.test_process import smsgw
from tests.test_status_exit import link, main_active
from tests.test_status_pacing import queue_pinned_answer
from tests.test_supervision import notify_socket, until
from tests.test_web_browser import WEB


def _write(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o640)
    return config


async def _status_json(config: Path) -> tuple[int, dict[str, Any]]:
    res = await asyncio.to_thread(smsgw, config, "status", "--json")
    assert res.stdout.strip(), f"no JSON on stdout; stderr: {res.stderr}"
    return res.returncode, json.loads(res.stdout)


async def test_json_names_a_prefix_whose_link_is_down(tmp_path: Path) -> None:
    # +4851 has a link of its own, down (nothing listens there); main (+4860) is up.
    async with HappySMSC() as smsc:
        links = link("opb", free_port(), 'prefixes = ["+4851"]\n')
        config = _write(
            tmp_path, config_text(tmp_path, smsc_port=smsc.port, smsc_extra='prefixes = ["+4860"]\n' + links)
        )
        async with running_gateway(load_config(config)) as gw:
            await until(lambda: main_active(gw.config.state_dir))
            code, shown = await _status_json(config)
    assert code == 1
    assert shown["routes_unserved"] == ["+4851"], shown.get("routes_unserved")
    assert shown["daemon"]["state"] == "running" and shown["daemon"]["links"]["opb"]["state"] != "active"


async def test_json_names_a_premium_answer_pinned_to_a_link_down(tmp_path: Path) -> None:
    async with HappySMSC() as smsc:
        down = smsc_link("b", free_port(), 'prefixes = ["+4951"]')
        config = _write(tmp_path, config_text(tmp_path, smsc_port=smsc.port) + down)
        async with running_gateway(load_config(config)) as gw:
            await until(lambda: main_active(gw.config.state_dir))
            healthy_code, healthy = await _status_json(config)
            await gw.store.write(lambda: queue_pinned_answer(gw.store, "b"))
            code, shown = await _status_json(config)
    assert healthy_code == 0 and healthy["routes_unserved"] == [], healthy.get("routes_unserved")
    assert code == 1
    assert shown["routes_unserved"] == ["1 part(s) pinned to link b (premium answers)"], shown


async def test_json_says_why_the_daemon_is_not_answering_or_not_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The status file is written once and not again for an hour: made old, the daemon still holds
    # the state directory's lock, as one hung would.
    monkeypatch.setattr(housekeeping, "STATUS_INTERVAL", 3600.0)
    async with HappySMSC() as smsc:
        config = _write(tmp_path, config_text(tmp_path, smsc_port=smsc.port))
        state_dir = tmp_path / "state"
        async with running_gateway(load_config(config)) as gw:
            state_dir = gw.config.state_dir
            await until(lambda: read_status(state_dir) is not None)
            status = read_status(state_dir) or {}
            stale = {**status, "updated_at": time.time() - 300}
            (state_dir / STATUS_FILE).write_text(json.dumps(stale))
            code, shown = await _status_json(config)
            text = await asyncio.to_thread(smsgw, config, "status")
        assert code == 1
        said = shown["daemon"]["state"]
        assert said.startswith(f"not answering: pid {status['pid']} last wrote its status "), shown["daemon"]
        assert f"daemon    {said}\n" in text.stdout, text.stdout  # the text's very words
        assert shown["routes_unserved"] is None  # the links' states are old: nothing is claimed

        # Stopped, and its last status file left behind as a kill -9 leaves it.
        (state_dir / STATUS_FILE).write_text(json.dumps(status))
        code, shown = await _status_json(config)
    assert code == 3
    assert shown["daemon"]["state"] == f"not running (pid {status['pid']} has exited without a clean stop)"


async def test_json_says_there_is_no_database(tmp_path: Path) -> None:
    config = _write(tmp_path, config_text(tmp_path, smsc_port=free_port()))
    assert not (tmp_path / "state").exists()
    res = await asyncio.to_thread(smsgw, config, "status", "--json")
    assert res.returncode == 3, res.stdout + res.stderr
    shown = json.loads(res.stdout)
    assert shown["database"] is None and shown["daemon"] == {"state": "not running"}, shown
    assert shown["error"] and shown["error"] in res.stderr, (shown, res.stderr)


def _said(received: list[str]) -> list[str]:
    return [m for m in received if m.startswith("STATUS=")]


async def test_status_line_names_an_unserved_prefix_and_a_pinned_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "STATUS_INTERVAL", 0.2)
    monkeypatch.setattr(statuswaits, "LOOK_SECONDS", 0.1)
    notify = tmp_path / "notify"
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify))
    async with HappySMSC() as smsc, notify_socket(notify) as received:
        # main (every number) up; opb, the exclusive link for +4851, down; b (+4951, which main takes
        # too) down: a spare.
        links = link("opb", free_port(), 'prefixes = ["+4851"]\nexclusive = true\n')
        links += link("b", free_port(), 'prefixes = ["+4951"]\n')
        text = config_text(tmp_path, smsc_port=smsc.port) + links
        config = _write(tmp_path, text)
        async with running_gateway(load_config(config)) as gw:
            await until(lambda: main_active(gw.config.state_dir))
            await until(lambda: any("no link up for +4851" in m for m in _said(received)), 10)
            assert _said(received)[-1].startswith("STATUS=queued ")
            assert _said(received)[-1].endswith("links up 1/3, outbox 0, no link up for +4851"), _said(
                received
            )
            await gw.store.write(lambda: queue_pinned_answer(gw.store, "b"))
            pinned = "no link up for +4851, 1 part(s) pinned to link b (premium answers)"
            await until(lambda: any(m.endswith(pinned) for m in _said(received)), 10)
            res = await asyncio.to_thread(smsgw, config, "status")
    # The very words of the routes line, but its tail.
    assert f"routes    {pinned}: their SMS wait" in res.stdout, res.stdout


async def test_status_line_says_a_queue_is_stuck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(housekeeping, "STATUS_INTERVAL", 0.2)
    monkeypatch.setattr(statuswaits, "LOOK_SECONDS", 0.1)
    notify = tmp_path / "notify"
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify))
    async with ThrottlingSMSC(accept_per_second=0.001) as smsc, notify_socket(notify) as received:
        config = _write(tmp_path, config_text(tmp_path, smsc_port=smsc.port))
        async with running_gateway(load_config(config)) as gw:
            await until(lambda: main_active(gw.config.state_dir))
            numbers = [to(f"6011234{i:02d}") for i in range(4)]
            assert (await gw.send(mail(numbers, "throttled"), numbers)).error is None
            await gw.until(lambda: smsc.throttled >= 3, 30)
            await asyncio.sleep(0.5)
            assert "queue stuck" not in _said(received)[-1], _said(received)
            store = gw.store
            # Accepted 20 min ago: the queue has stood that long (made old in the store, not waited).
            await store.write(
                lambda: store.db.conn.execute("UPDATE messages SET created_at = created_at - 1200")
            )
            await until(lambda: _said(received)[-1].endswith(", queue stuck"), 15)
            res = await asyncio.to_thread(smsgw, config, "status")
    assert ", links up 1/1, " in _said(received)[-1], _said(received)
    assert "trouble: an SMS due has waited 20 min since " in res.stdout, res.stdout


async def test_healthz_during_a_lock_says_what_status_says(tmp_path: Path) -> None:
    async with HappySMSC() as smsc:
        config = _write(tmp_path, config_text(tmp_path, smsc_port=smsc.port, extra=WEB))
        async with running_gateway(load_config(config)) as gw:
            await until(lambda: main_active(gw.config.state_dir))
            base = f"http://127.0.0.1:{gw.daemon.web.port}"
            async with httpx.AsyncClient(base_url=base, timeout=60) as c:
                assert (await c.get("/healthz")).text == "ok\n"
                holder = sqlite3.connect(gw.config.db_path, isolation_level=None)
                holder.execute("BEGIN EXCLUSIVE")  # an sqlite3 shell left in a transaction
                try:
                    await asyncio.sleep(1.1)  # past the heartbeat shared by the requests of a second
                    health = await c.get("/healthz")
                finally:
                    holder.execute("ROLLBACK")
                    holder.close()
    assert health.status_code == 503, health.text
    assert health.text == (
        "store not writable: database locked by another process:"
        " end the sqlite3 shell or the backup holding it\n"
    ), health.text
