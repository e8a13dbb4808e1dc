"""A premium service bound to a number the config then renumbers (7355 -> 7356): the CLI as processes
on a real SQLite file, the daemon as `smsgw run`.

check-config passed, the start said nothing, `premium list` showed 7355 as if it ran there, and every
vote to 7356 went to the fallback address ("does not run on 7356").
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import config_text, free_port
from tests.test_cli_errors import run, write_config
from tests.test_process import start_daemon
from tests.test_relay_network_shared import logged

PREMIUM = '\n[premium]\nnumbers = ["{n}", "7955"]\nfallback_address = "fallback@example.org"\n'
WARNING = "premium service KP123: number 7355 is no longer configured in [premium]"


def renumbered(tmp_path: Path, smtp_port: int = 0) -> Path:
    """KP123 added on 7355 alone; then the config's 7355 is 7356."""
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port)
    path = write_config(tmp_path, text + PREMIUM.format(n="7355"))
    (tmp_path / "state").mkdir()
    for args in (
        ("account", "add", "beta"),
        ("premium", "add", "KP123", "--account", "beta", "--email", "k@example.org", "--number", "7355"),
    ):
        res = run(path, *args)
        assert res.returncode == 0, (args, res.stderr)
    path.write_text(text + PREMIUM.format(n="7356"))
    return path


def test_check_config_and_premium_list_name_a_service_on_a_number_no_longer_configured(
    tmp_path: Path,
) -> None:
    config = renumbered(tmp_path)
    check = run(config, "check-config")
    listed = run(config, "premium", "list")
    fixed = run(config, "premium", "set", "KP123", "--number", "7356")
    check_after, listed_after = run(config, "check-config"), run(config, "premium", "list")
    assert check.returncode == 0, check.stderr
    [line] = [line for line in check.stderr.splitlines() if "KP123" in line]
    assert (
        WARNING in line and "it runs on no configured number: every vote for it goes to the fallback" in line
    ), line
    assert "7955" not in line.split("(configured")[0], line  # a number it never ran on loses nothing
    assert "`smsgw premium set KP123 --number …` (configured: 7356, 7955) or `--all-numbers`" in line, line
    assert "numbers 7355 (not configured)" in listed.stdout, listed.stdout
    assert fixed.returncode == 0, fixed.stderr
    assert "KP123" not in check_after.stderr, check_after.stderr
    assert "numbers 7356 " in listed_after.stdout and "not configured" not in listed_after.stdout


async def test_the_start_warns_of_a_service_on_a_number_no_longer_configured(tmp_path: Path) -> None:
    port = free_port()
    config = renumbered(tmp_path, smtp_port=port)
    proc = await start_daemon(config, port)
    try:
        start = await asyncio.to_thread(logged, tmp_path / "daemon.log", "config.premium_number_gone", 1.0)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
    assert len(start) == 1 and start[0]["level"] == "warning", start
    assert WARNING in str(start[0]["detail"]) and "smsgw premium set KP123" in str(start[0]["detail"]), start
