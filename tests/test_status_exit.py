"""What `smsgw status` exits with, and what systemd's STATUS= line says, in trouble.

`smsgw status` exited 0 with the daemon stopped, killed, or refusing every mail on a full disk, so
no script or monitoring check could tell from it; and through 100 s of full disk the STATUS= line
said `queued 0, links up 1/1, outbox 0` while every mail got 452.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
import structlog.testing

from gateway.config import load_config
from gateway.housekeeping import STATUS_FILE, read_status
from tests.conftest import config_text, free_port, make_config, running_gateway, unwritable
from tests.fakes.smsc import HappySMSC
from tests.test_cli_help import help_text
from tests.test_disk_full_health import refuse_a_mail
from tests.test_process import ROOT, smsgw, start_daemon, write_config
from tests.test_supervision import notify_socket, until
from tests.test_web_browser import WEB, _get


def test_status_help_gives_the_exit_codes() -> None:
    text = help_text("status")
    assert "0 the daemon runs and nothing is wrong; 1 it runs with trouble" in text, text
    assert "3 it is not running" in text


def test_status_on_a_config_it_cannot_read_exits_4_unknown_and_the_other_commands_3(tmp_path: Path) -> None:
    # `status` exited 3, "not running", for a --config that does not exist: a monitoring check could
    # not tell a stopped gateway from its own typo. 4 is LSB's "unknown"; `run` keeps 3, the unit's
    # RestartPreventExitStatus (a daemon refusing its config is not restarted every 5 s).
    assert "RestartPreventExitStatus=3\n" in (ROOT / "systemd" / "smsgw.service").read_text(encoding="utf-8")
    misspelt = write_config(tmp_path, free_port(), free_port())
    misspelt.write_text(misspelt.read_text(encoding="utf-8") + "\n[gateway_typo]\nx = 1\n", encoding="utf-8")
    for config in (tmp_path / "no" / "such.toml", tmp_path, misspelt):  # missing, a directory, refused
        res = smsgw(config, "status")
        assert res.returncode == 4 and "smsgw: " in res.stderr and not res.stdout, (config, res)
        res = smsgw(config, "status", "--json")
        assert res.returncode == 4 and '"state": "unknown"' in res.stdout, (config, res)
        for command in (["run"], ["check-config"], ["account", "list"]):
            res = smsgw(config, *command)
            assert res.returncode == 3, (config, command, res)
    assert "4 unknown: the config cannot be read" in help_text("status")


def links_up(state_dir: Path) -> bool:
    links = (read_status(state_dir) or {}).get("links", {})
    return bool(links) and all(link["state"] == "active" for link in links.values())


async def test_status_exits_0_running_and_3_stopped_or_killed(tmp_path: Path) -> None:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        config = write_config(tmp_path, smsc.port, smtp_port)
        state_dir = tmp_path / "state"
        proc = await start_daemon(config, smtp_port)
        try:
            await until(lambda: links_up(state_dir))
            res = await asyncio.to_thread(smsgw, config, "status")
            assert "daemon    running" in res.stdout, res.stdout
            assert res.returncode == 0, res.stdout + res.stderr
            assert (await asyncio.to_thread(smsgw, config, "status", "--json")).returncode == 0
            last_words = (state_dir / STATUS_FILE).read_bytes()  # what a crash would leave behind
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 30) == 0
        res = await asyncio.to_thread(smsgw, config, "status")
        assert "daemon    not running\n" in res.stdout, res.stdout
        assert res.returncode == 3, res.stdout + res.stderr
        assert (await asyncio.to_thread(smsgw, config, "status", "--json")).returncode == 3
        # Killed (-9): its last status file stays, naming a pid that is gone.
        (state_dir / STATUS_FILE).write_bytes(last_words)
        res = await asyncio.to_thread(smsgw, config, "status")
        assert f"pid {proc.pid} has exited without a clean stop" in res.stdout, res.stdout
        assert res.returncode == 3, res.stdout + res.stderr


async def test_a_failing_store_is_on_the_status_line_and_status_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notify = tmp_path / "notify"
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify))
    config = tmp_path / "config.toml"
    async with HappySMSC() as smsc, notify_socket(notify) as received:
        config.write_text(config_text(tmp_path, smsc_port=smsc.port))
        async with running_gateway(load_config(config)) as gw:
            await until(lambda: links_up(gw.config.state_dir))
            healthy = await asyncio.to_thread(smsgw, config, "status")
            assert healthy.returncode == 0, healthy.stdout + healthy.stderr
            await refuse_a_mail(gw)
            refused_at = time.time()
            # STATUS= goes out in the pass that writes the status file, with no wait between.
            await gw.until(lambda: (read_status(gw.config.state_dir) or {}).get("updated_at", 0) > refused_at)
            await asyncio.sleep(0.2)  # the datagram read
            said = [m for m in received if m.startswith("STATUS=")]
            full = "store failing: database or disk is full"
            assert said[-1] == f"STATUS=queued 0, links up 1/1, outbox 0, {full}", said
            res = await asyncio.to_thread(smsgw, config, "status")
    assert "store     failing since " in res.stdout, res.stdout
    assert res.returncode == 1, res.stdout + res.stderr


async def test_a_status_file_the_stop_cannot_remove_does_not_cut_the_stop_short(tmp_path: Path) -> None:
    # A state directory remounted read-only after I/O errors: the stop's unlink of status.json
    # raised, so the held log counts and daemon.stopped were never logged and the stop ended with
    # "smsgw: cannot start: [Errno 30] Read-only file system: '.../status.json'" and exit 1.
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(make_config(tmp_path, smsc_port=free_port())) as gw:
            status = gw.config.state_dir / STATUS_FILE
            await gw.until(status.exists)
            with unwritable(gw.config.state_dir):
                gw.stop.set()
                await asyncio.wait_for(asyncio.shield(gw.task), 30)  # ends without an error
            assert status.exists()
    events = [e["event"] for e in logs]
    assert "status.remove_failed" in events and events[-1] == "daemon.stopped", events[-5:]
    failed = next(e for e in logs if e["event"] == "status.remove_failed")
    assert failed["path"] == str(status) and failed["log_level"] == "warning", failed


def link(name: str, port: int, prefixes: str = "") -> str:
    section = f'\n[[smsc]]\nname = "{name}"\ntype = "smpp"\nport = {port}\n'
    return (
        section
        + 'system_id = "smsgw"\npassword = "secret"\n'
        + prefixes
        + "reconnect_min_seconds = 0.1\nreconnect_max_seconds = 0.5\n"
    )


def main_active(state_dir: Path) -> bool:
    return (read_status(state_dir) or {}).get("links", {}).get("main", {}).get("state") == "active"


@pytest.mark.parametrize("default_link", [False, True], ids=["prefix-links-only", "with-a-default-link"])
async def test_a_prefixs_only_link_down_is_trouble_for_status_and_healthz(
    tmp_path: Path, default_link: bool
) -> None:
    # Prefix links alone, +4851 served by a link whose SMSC is down: its SMS waited while `status`
    # exited 0 and /healthz said ok, because another link was up. A link down whose numbers another
    # takes (a default link up) is still no trouble.
    async with HappySMSC() as smsc:
        links = link("opb", free_port(), 'prefixes = ["+4851"]\n')  # nobody listens there
        if default_link:
            links += link("spare", smsc.port)
        config = tmp_path / "config.toml"
        config.write_text(
            config_text(tmp_path, smsc_port=smsc.port, extra=WEB, smsc_extra='prefixes = ["+4860"]\n' + links)
        )
        async with running_gateway(load_config(config)) as gw:
            await until(lambda: main_active(gw.config.state_dir))
            res = await asyncio.to_thread(smsgw, config, "status")
            health = await asyncio.to_thread(_get, f"http://127.0.0.1:{gw.daemon.web.port}/healthz")
    assert "link opb: " in res.stdout and "link main: active" in res.stdout, res.stdout
    if default_link:
        assert res.returncode == 0 and "routes" not in res.stdout, res.stdout + res.stderr
        assert health == (200, "ok\n")
    else:
        assert "routes    no link up for +4851: their SMS wait" in res.stdout, res.stdout
        assert res.returncode == 1, res.stdout + res.stderr
        assert health == (503, "no link is bound for +4851\n")
