"""`smsgw run` says R-1.11 (`config.sender_unanswerable`) of the accounts its database holds, not only
of the `[[account]]` blocks.

Most accounts are made with `smsgw account add/set` or the panel; the start read the blocks alone, so
an account given `--sender ACME` had its note from check-config but none in the log of the daemon
sending from it. The daemon now reads its own store once, after seeding the blocks into it: a block
and its stored account are said once, a block set apart from its account as the stored account whose
sender is used. The real `smsgw run` process on a real SQLite file, stopped by SIGTERM once listening.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from gateway.cli.main import main
from tests.conftest import config_text, free_port
from tests.test_process import CLI, ROOT, until_listening

ALPHA = "is alphanumeric: phones cannot answer it, replies are impossible"
BLOCKS = '\n[[account]]\nname = "shop"\nsender = "SHOP"\n\n[[account]]\nname = "desk"\nsender = "DESK"\n'


async def test_the_start_says_the_stored_accounts_unanswerable_senders_once_each(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port, default_sender="+48601000000")
    config.write_text(text + BLOCKS)
    config.chmod(0o640)
    (tmp_path / "state").mkdir()
    for args in (("ACME2", "--sender", "ACME"), ("shop", "--sender", "SHOP"), ("desk", "--sender", "DESK2")):
        assert main(["-c", str(config), "account", "add", *args]) == 0
    log = tmp_path / "daemon.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([*CLI, "--config", str(config), "run"], cwd=ROOT, stdout=out, stderr=out)
        try:
            await until_listening(proc, smtp_port, log, within=30)  # the notes come before the binds
        finally:
            proc.terminate()
            code = await asyncio.to_thread(proc.wait, 30)
    logged = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert code == 0, log.read_text()[-2000:]
    said = [e["detail"] for e in logged if e["event"] == "config.sender_unanswerable"]
    assert said == [
        f"account shop: sender 'SHOP' {ALPHA}",  # the block and its stored account agree: once
        f"stored account ACME2: sender 'ACME' {ALPHA}",  # made by `account add`: no block
        f"stored account desk: sender 'DESK2' {ALPHA}",  # set apart from its block: the one it sends from
    ]
    assert [e["event"] for e in logged].count("daemon.stopped") == 1


async def test_many_accounts_with_brand_names_are_a_few_lines_and_how_many_more(tmp_path: Path) -> None:
    # 1,000 accounts each sending from its own brand name were 1,002 warnings at every start; accounts
    # sharing a sender are one line naming a few of them.
    from gateway.accountsenders import SAID_AT_START

    smtp_port = free_port()
    config = tmp_path / "config.toml"
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port, default_sender="+48601000000")
    config.write_text(text)
    config.chmod(0o640)
    (tmp_path / "state").mkdir()
    for i in range(SAID_AT_START + 5):
        assert main(["-c", str(config), "account", "add", f"brand{i:02d}", "--sender", f"BRAND{i:02d}"]) == 0
    for i in range(7):
        assert main(["-c", str(config), "account", "add", f"a-shared{i}", "--sender", "SHARED"]) == 0
    log = tmp_path / "daemon.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([*CLI, "--config", str(config), "run"], cwd=ROOT, stdout=out, stderr=out)
        try:
            await until_listening(proc, smtp_port, log, within=30)
        finally:
            proc.terminate()
            code = await asyncio.to_thread(proc.wait, 30)
    logged = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert code == 0, log.read_text()[-2000:]
    said = [e["detail"] for e in logged if e["event"] == "config.sender_unanswerable"]
    assert len(said) == SAID_AT_START + 1, said
    assert said[-1].startswith("and 6 more sender(s) phones cannot answer"), said[-1]
    shared = [line for line in said if "'SHARED'" in line]
    assert shared == [
        "stored account a-shared0, stored account a-shared1, stored account a-shared2, stored account"
        f" a-shared3, stored account a-shared4 and 2 more: sender 'SHARED' {ALPHA}"
    ], said
