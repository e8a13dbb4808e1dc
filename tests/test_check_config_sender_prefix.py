"""check-config and the start name each number SMS go out from that a CIMD2 link's `sender_prefix`
cannot carry: the reply pool's, the default sender, an account's.

Such a number cannot be written as a sub-address of the interface's number, so the SMSC sends the SMS
from the interface's own number; the phone answers that, and the answer reached no user (the fallback
address). check-config said "Config OK" and the run said it only as each SMS went
(`cimd2.sender_outside_prefix`). `smsgw check-config` and `smsgw run` as real processes.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from gateway.config import load_config
from gateway.store.db import Store
from tests.conftest import config_text, free_port
from tests.test_config_checks import smsgw, write
from tests.test_process import start_daemon

INTERFACE = "+48500100"
POOL = '\n[replies]\npool = ["+48500100400..+48500100409", "+48100200400..+48100200409"]\n'
SAYS = "cannot carry"


def cimd2_config(tmp_path: Path, prefix: str, *, extra: str = "", default: str = "+48500100300") -> str:
    text = config_text(
        tmp_path, smsc_port=free_port(), smtp_port=free_port(), extra=extra, default_sender=default
    )
    assert 'type = "smpp"' in text and 'sender = "+48100200300"' in text
    text = text.replace('sender = "+48100200300"', 'sender = "+48500100301"', 1)  # the account's: under it
    return text.replace('type = "smpp"', f'type = "cimd2"\nsender_prefix = "{prefix}"', 1)


def with_database(path: Path) -> Path:
    """`path`'s config with its database made, as the daemon's first start makes it."""
    store = Store.open(load_config(path).db_path)
    store.close()
    return path


def warned(tmp_path: Path, text: str) -> list[str]:
    res = smsgw("--config", str(write(tmp_path, text)), "check-config")
    assert res.returncode == 0, res.stderr  # a warning: the link's other SMS go well
    return [line for line in res.stderr.splitlines() if SAYS in line]


def test_the_pool_numbers_outside_the_prefix_are_named(tmp_path: Path) -> None:
    lines = warned(tmp_path, cimd2_config(tmp_path, INTERFACE, extra=POOL))
    assert lines == [
        f'smsgw: warning: [[smsc]] "main" sender_prefix: "{INTERFACE}" cannot carry [replies] pool'
        ' "+48100200400..+48100200409": SMS by this link reach phones from the interface\'s number'
        f" {INTERFACE}, and the phones' answers to it go to no user (to [replies] fallback_address, if"
        " set); set sender_prefix to the start those numbers share (or take it out to send each number"
        " whole), or send from numbers under it"
    ], lines  # the range under the interface's number is not named


def test_without_a_pool_the_default_and_account_senders_are_named(tmp_path: Path) -> None:
    accounts = '\n[[account]]\nname = "shop"\nsender = "+48100200399"\n'
    accounts += '\n[[account]]\nname = "under"\nsender = "+48500100399"\n'
    accounts += '\n[[account]]\nname = "brand"\nsender = "ACME"\n'  # 027, not a sub-address
    lines = warned(tmp_path, cimd2_config(tmp_path, INTERFACE, extra=accounts, default="+48100200300"))
    assert len(lines) == 1 and 'cannot carry [gateway] default_sender, [[account]] "shop" sender:' in lines[0]
    lines = warned(tmp_path, cimd2_config(tmp_path, "never", extra=accounts))
    assert len(lines) == 1, lines
    every = (
        '[gateway] default_sender, [[account]] "acme" sender, [[account]] "shop" sender, [[account]] "under"'
    )
    assert f'"never" cannot carry {every} sender:' in lines[0], lines
    assert "reach phones from the interface's own number" in lines[0]


def test_no_word_when_every_sender_is_under_it(tmp_path: Path) -> None:
    assert warned(tmp_path, cimd2_config(tmp_path, INTERFACE)) == []
    pool = '\n[replies]\npool = ["+48500100400..+48500100409"]\n'
    assert warned(tmp_path, cimd2_config(tmp_path, INTERFACE, extra=pool, default="+48100200300")) == []


async def test_the_start_logs_it(tmp_path: Path) -> None:
    text = cimd2_config(tmp_path, INTERFACE, extra=POOL)
    smtp_port = int(text.split('listen = "127.0.0.1:')[1].split('"')[0])
    proc = await start_daemon(write(tmp_path, text), smtp_port)
    try:
        log = (tmp_path / "daemon.log").read_text()
        said = [line for line in log.splitlines() if "config.sender_outside_prefix" in line]
        assert len(said) == 1 and '"+48100200400..+48100200409"' in said[0].replace('\\"', '"'), log[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)


def test_a_stored_accounts_sender_is_named(tmp_path: Path) -> None:
    # Most accounts are made by `smsgw account add` or the panel, not by a block.
    text = cimd2_config(tmp_path, INTERFACE)
    path = with_database(write(tmp_path, text))
    assert smsgw("--config", str(path), "account", "add", "odd", "--sender", "+48100200399").returncode == 0
    assert smsgw("--config", str(path), "account", "add", "fine", "--sender", "+48500100399").returncode == 0
    lines = warned(tmp_path, text)
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f'smsgw: warning: [[smsc]] "main" sender_prefix: "{INTERFACE}" cannot carry stored account odd\'s'
        " sender +48100200399: SMS by this link reach phones from the interface's number"
    ), lines


async def test_the_start_logs_a_stored_accounts_sender(tmp_path: Path) -> None:
    text = cimd2_config(tmp_path, INTERFACE)
    path = with_database(write(tmp_path, text))
    assert smsgw("--config", str(path), "account", "add", "odd", "--sender", "+48100200399").returncode == 0
    smtp_port = int(text.split('listen = "127.0.0.1:')[1].split('"')[0])
    proc = await start_daemon(path, smtp_port)
    try:
        log = (tmp_path / "daemon.log").read_text()
        said = [line for line in log.splitlines() if "config.sender_outside_prefix" in line]
        assert len(said) == 1 and "stored account odd" in said[0], log[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
