"""An `[[account]]` block renamed in the config (acme -> acmecorp, same network, same user): the start
creates a second account on the old one's relay network, whose user stays the old account's. The
start warns before it seeds, so it said nothing of either, and only the start after it (or a
check-config then) did. The CLI and the daemon as real processes on a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import STAFF, config_text, free_port
from tests.test_cli_errors import run, write_config
from tests.test_process import start_daemon
from tests.test_relay_network_shared import logged

HELD = f'[[account]] "acmecorp" names user {STAFF}, but it is account acme\'s and stays so when the start'
SHARED = "accounts acme (127.0.0.0/8) and acmecorp (127.0.0.0/8) share relay network addresses"


async def started(config: Path, port: int) -> None:
    """The daemon started (its relay port answering) and stopped again."""
    proc = await start_daemon(config, port)
    proc.terminate()
    await asyncio.to_thread(proc.wait, 30)


async def test_check_config_and_the_start_that_seeds_a_renamed_block_name_what_it_leaves(
    tmp_path: Path,
) -> None:
    port = free_port()
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=port)
    config = write_config(tmp_path, text)
    await started(config, port)  # seeds acme, with anna and 127.0.0.0/8
    config.write_text(text.replace('name = "acme"', 'name = "acmecorp"', 1))
    check = await asyncio.to_thread(run, config, "check-config")
    log = tmp_path / "daemon.log"
    log.write_text("")
    await started(config, port)  # seeds acmecorp: the start that does so says what it leaves
    held = await asyncio.to_thread(logged, log, "config.account_not_applied", 1.0)
    shared = await asyncio.to_thread(logged, log, "config.relay_networks_shared", 1.0)
    seeded = await asyncio.to_thread(logged, log, "account.seeded", 1.0)
    listed = await asyncio.to_thread(run, config, "account", "list")
    assert check.returncode == 0, check.stderr
    assert HELD in check.stderr and SHARED in check.stderr, check.stderr
    assert [e["account"] for e in seeded] == ["acmecorp"], seeded
    assert "acmecorp" in listed.stdout, listed.stdout
    assert len(held) == 1 and HELD in str(held[0]["detail"]), held
    assert f"`smsgw user add {STAFF} --account 'acmecorp'` once it exists" in str(held[0]["detail"]), held
    assert len(shared) == 1 and SHARED in str(shared[0]["detail"]), shared
