"""What the README's walkthrough promised and a first hour did not find.

A report the simulator owes is written to its `.owed` file only if still owed `HOLD_SECONDS` after the
submit, so a kill -9 loses those due sooner: on the shipped config (reports 0.2 s after the submit)
those of the SMS taken in the last moment, which then stayed `submitted` until their validity ran
out, and `smsgw simulator send-report ID` answered "unknown message_id" for them after the restart. It
now finds the SMS in the simulator's log. A report sent after the simulator's own final one changes
nothing at the gateway, yet the command said "report failed … sent": it now says so, and how to send
one that counts. And `smsgw status` run outside the clone's directory said "not running" (exit 3)
about a daemon running fine: a config file found nowhere is a usage error (2) for every command.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import config_text, free_port
from tests.test_process import CLI, ROOT, smsgw, start_daemon
from tests.test_simulator_pending_reports import send_mails, start_simulator, states, until

DELAY = 0.4  # the simulator's report delay: under owed.HOLD_SECONDS, as the shipped 0.2 s is
NUMBERS = ["601000001", "601000002", "601000013", "601000004"]  # send_mails' numbers; 13 fails


def logged_ids(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [json.loads(line)["message_id"] for line in log.read_text().splitlines() if line.strip()]


async def until_logged(log: Path, count: int, timeout: float) -> None:
    """Poll the simulator's log closely: the kill must come before its reports (DELAY)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(logged_ids(log)) < count:
        if loop.time() > deadline:
            raise AssertionError(f"{count} parts not logged within {timeout:g} s")
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_a_report_a_kill_9_cut_off_is_sent_by_hand_and_a_late_one_says_it_changes_nothing(
    tmp_path: Path, protocol: str
) -> None:
    smpp, cimd2, smtp_port = free_port(), free_port(), free_port()
    port = smpp if protocol == "smpp" else cimd2
    log = tmp_path / "sim.jsonl"
    config = tmp_path / "config.toml"
    config.write_text(
        config_text(tmp_path, smsc_port=port, smtp_port=smtp_port)
        .replace('type = "smpp"', f'type = "{protocol}"')
        .replace(
            "[simulator]\nenabled = false\n",
            f"[simulator]\nenabled = false\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\n"
            f'control_port = {free_port()}\nlog = "{log}"\ndlr_delay_seconds = {DELAY}\n',
        )
    )
    db = tmp_path / "state" / "smsgw.db"
    sim = await start_simulator(config, port)
    daemon = await start_daemon(config, smtp_port)
    try:
        await send_mails(smtp_port, ["First"])
        await until_logged(log, 4, 10)
        # Each answer taken by the gateway before the kill (the simulator logs a part just before it
        # answers it: a kill between the two, under load, left the last part to be sent again).
        await until(lambda: states(db) == ["submitted"] * 4, 5, f"4 parts submitted: {states(db)}")
        sim.send_signal(signal.SIGKILL)  # within DELAY of the submits: no report went, none written
        sim.wait(timeout=30)
        sim = await start_simulator(config, port)
        await asyncio.sleep(2 * DELAY + 1)  # the gateway binds again; the restart owes it nothing
        assert states(db) == ["submitted"] * 4, "the kill -9 was expected to lose these reports"

        # The restarted simulator finds each SMS in its log: its report settles the SMS.
        ids = logged_ids(log)
        for mid, status in zip(ids, ["delivered", "delivered", "failed", "delivered"], strict=True):
            res = await asyncio.to_thread(smsgw, config, "simulator", "send-report", mid, "--status", status)
            assert res.returncode == 0, res.stderr
            assert f"report {status} for message {mid} sent" in res.stdout
            assert "before its restart, found in its log" in res.stdout
        outcomes = ["delivered", "delivered", "failed", "delivered"]
        await until(lambda: states(db) == outcomes, 10, f"every SMS reported: {states(db)}")

        # A second report on the same SMS changes nothing at the gateway: the command says so.
        res = await asyncio.to_thread(smsgw, config, "simulator", "send-report", ids[0], "--status", "failed")
        assert res.returncode == 1, res.stderr  # it sent nothing the gateway takes
        assert f"report failed for message {ids[0]} sent" in res.stdout
        assert "changes nothing: the simulator had already reported this SMS delivered" in res.stdout
        assert f"SMS {DELAY:g} s after taking it ([simulator] dlr_delay_seconds)" in res.stdout
        await asyncio.sleep(1)
        assert states(db) == outcomes

        res = await asyncio.to_thread(smsgw, config, "simulator", "send-report", "999")
        assert res.returncode == 1
        assert "unknown message_id '999': no SMS this simulator took has it" in res.stderr
    finally:
        for proc in (daemon, sim):
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


async def test_a_report_after_the_built_in_simulators_own_says_it_changes_nothing(tmp_path: Path) -> None:
    # The shipped case: the daemon's own simulator reported the SMS 0.2 s after taking it.
    smpp, smtp_port = free_port(), free_port()
    log = tmp_path / "sim.jsonl"
    config = tmp_path / "config.toml"
    config.write_text(
        config_text(tmp_path, smsc_port=smpp, smtp_port=smtp_port).replace(
            "[simulator]\nenabled = false\n",
            f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {free_port()}\n"
            f'control_port = {free_port()}\nlog = "{log}"\ndlr_delay_seconds = 0.2\n',
        )
    )
    db = tmp_path / "state" / "smsgw.db"
    daemon = await start_daemon(config, smtp_port)
    try:
        await send_mails(smtp_port, ["First"])
        outcomes = ["delivered", "delivered", "failed", "delivered"]
        await until(lambda: states(db) == outcomes, 10, f"every SMS reported: {states(db)}")
        res = await asyncio.to_thread(
            smsgw, config, "simulator", "send-report", "--last", "--status", "pending"
        )
        assert res.returncode == 1, res.stderr
        assert "changes nothing: the simulator had already reported this SMS delivered (at " in res.stdout
        assert "SMS 0.2 s after taking it ([simulator] dlr_delay_seconds): to choose" in res.stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)


@pytest.mark.parametrize("command", [["status"], ["queue", "list"], ["simulator", "send-report", "--last"]])
def test_a_command_outside_the_config_directory_is_a_usage_error_saying_where_it_looked(
    tmp_path: Path, command: list[str]
) -> None:
    if Path("/etc/smsgw/config.toml").exists():
        pytest.skip("this machine has /etc/smsgw/config.toml: smsgw would use it")
    env = {k: v for k, v in os.environ.items() if k != "SMSGW_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    res = subprocess.run([*CLI, *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert f"no config file: none in this directory ({tmp_path / 'config.toml'})" in res.stderr
    assert "in the directory that holds its config.toml (the clone's" in res.stderr
    assert "give --config PATH" in res.stderr
