"""Digits of other scripts and superscripts typed at the command line, and `user passwd` without a
standard input: each CLI runs as `python -m gateway.cli` on a real SQLite file, with the daemon and
a fake SMSC over TCP where the SMS itself is the proof.

str.isdigit() takes ٦٠١ and ¹²³, so a number sender of them was stored, and every SMS of its
account then failed as malformed ('latin-1' codec can't encode); `send` stopped on such a number
with "'ascii' codec can't encode", the number unnamed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.cli.common import EXIT_CONFIG, EXIT_USAGE
from gateway.store.db import Store
from tests.conftest import STAFF, config_text, free_port
from tests.fakes.smsc import HappySMSC
from tests.test_cli_errors import CLI, ROOT, run, write_config
from tests.test_process import start_daemon

ARABIC = "٦٠١١٢٣٤٥٦"  # 601123456 in Arabic-Indic digits
ARABIC_INTERNATIONAL = "+٤٨٦٠١١٢٣٤٥٦"  # +48601123456
SUPERSCRIPT = "¹²³⁴⁵⁶⁷⁸⁹"


def stored_sender(db: Path, account: str = "acme") -> str | None:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT sender FROM accounts WHERE name = ?", (account,)).fetchone()[0]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "smsgw.db"
    store = Store.open(path)
    store.accounts.add_account("acme", sender="+48100200300")
    store.accounts.add_user(STAFF, "acme")
    store.close()
    return path


@pytest.mark.parametrize(
    "sender, fix",
    [
        (ARABIC, "write '601123456'"),
        (ARABIC_INTERNATIONAL, "write '+48601123456'"),
        (SUPERSCRIPT, "with 0-9"),
    ],
)
def test_account_add_and_set_refuse_a_sender_of_other_digits(
    tmp_path: Path, db: Path, sender: str, fix: str
) -> None:
    config = write_config(tmp_path)
    res = run(config, "account", "set", "acme", "--sender", sender)
    assert res.returncode == EXIT_USAGE and "Traceback" not in res.stderr, res.stderr
    assert "digits other than 0-9" in res.stderr and fix in res.stderr, res.stderr
    assert stored_sender(db) == "+48100200300"
    res = run(config, "account", "add", "beta", "--sender", sender)
    assert res.returncode == EXIT_USAGE and fix in res.stderr, res.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM accounts WHERE name = 'beta'").fetchone()[0] == 0


CONFIG_CASES = {  # key: (config_text's arguments, what the refusal names)
    "default_sender": ({"default_sender": ARABIC}, "default_sender: sender '٦٠١١٢٣٤٥٦' holds digits other"),
    "[replies] pool": ({"extra": '\n[replies]\npool = ["+٤٨٥٠٠١٠٠٢٠٠"]\n'}, "pool number '+٤٨٥٠٠١٠٠٢٠٠'"),
    "[[smsc]] prefixes": ({"smsc_extra": 'prefixes = ["+٤٨"]'}, "prefix '+٤٨' must look like +48"),
    "[[account]] sender": ({}, "\"acme\" sender: sender '¹²³⁴⁵⁶⁷⁸⁹' holds digits other than 0-9"),
}


@pytest.mark.parametrize("where", CONFIG_CASES)
def test_check_config_refuses_other_digits_in_senders_pool_and_prefixes(tmp_path: Path, where: str) -> None:
    # A pool number of them was a sender no SMSC can send from; a prefix of them matched no number.
    arguments, words = CONFIG_CASES[where]
    text = config_text(tmp_path, smsc_port=free_port(), **arguments)
    if where == "[[account]] sender":
        text = text.replace('sender = "+48100200300"', f'sender = "{SUPERSCRIPT}"')
    res = run(write_config(tmp_path, text), "check-config")
    assert res.returncode == EXIT_CONFIG and words in res.stderr, (res.stdout, res.stderr)


def test_install_service_refuses_a_sender_of_other_digits(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    res = run(
        write_config(tmp_path), "install-service", "--root", str(root), "--sender", ARABIC_INTERNATIONAL
    )
    assert res.returncode == EXIT_USAGE, (res.stdout, res.stderr)
    assert "--sender" in res.stderr and "write '+48601123456'" in res.stderr, res.stderr
    assert not any(root.iterdir())


@contextlib.asynccontextmanager
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[HappySMSC, Path]]:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        config = write_config(tmp_path, config_text(tmp_path, smsc_port=smsc.port, smtp_port=smtp_port))
        proc = await start_daemon(config, smtp_port)
        try:
            yield smsc, config
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 60)


def states(tmp_path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(tmp_path / "state" / "smsgw.db") as conn:
        return conn.execute("SELECT recipient, source, state FROM messages ORDER BY id").fetchall()


async def test_an_account_given_a_sender_of_other_digits_still_sends_from_its_number(tmp_path: Path) -> None:
    # Stored, such a sender made every SMS of the account fail as malformed at submit.
    async with daemon(tmp_path) as (smsc, config):
        refused = await asyncio.to_thread(
            run, config, "account", "set", "acme", "--sender", ARABIC_INTERNATIONAL
        )
        res = await asyncio.to_thread(run, config, "send", "--as", STAFF, "601123456", "hello", "--wait")
        assert states(tmp_path) == [("+48601123456", "+48100200300", "delivered")], res.stdout
        assert res.returncode == 0, (res.stdout, res.stderr)
        [sms] = smsc.received
        assert (sms.source, sms.destination) == ("48100200300", "+48601123456")  # digits on the wire
        assert refused.returncode == EXIT_USAGE and "write '+48601123456'" in refused.stderr, refused.stderr


async def test_send_reads_a_number_in_other_digits_and_refuses_superscripts(tmp_path: Path) -> None:
    # Sent as typed, the number stopped the mail itself ("'ascii' codec can't encode"), unnamed.
    async with daemon(tmp_path) as (smsc, config):
        res = await asyncio.to_thread(run, config, "send", "--as", STAFF, ARABIC, "hello", "--wait")
        assert res.returncode == 0 and f"{ARABIC} read as 601123456" in res.stdout, (res.stdout, res.stderr)
        assert [sms.destination for sms in smsc.received] == ["+48601123456"]
        # Superscripts are no digits of any script: named, and nothing is sent.
        res = await asyncio.to_thread(run, config, "send", "--as", STAFF, SUPERSCRIPT, "x")
        assert res.returncode == EXIT_USAGE and f"{SUPERSCRIPT!r} is not a phone number" in res.stderr
        assert states(tmp_path) == [("+48601123456", "+48100200300", "delivered")]


def password_hash(db: Path) -> str | None:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT password_hash FROM users WHERE email = ?", (STAFF,)).fetchone()[0]


@pytest.mark.parametrize(
    "redirect, words",
    [("<&-", "standard input is closed"), ("0>/dev/null", "cannot read the password from standard input")],
)
def test_user_passwd_without_a_readable_stdin_says_so(
    tmp_path: Path, db: Path, redirect: str, words: str
) -> None:
    # From cron or a unit with stdin closed Python has no sys.stdin: an AttributeError traceback.
    config = write_config(tmp_path)
    before = password_hash(db)
    command = " ".join([*CLI, "--config", str(config), "user", "passwd", STAFF, redirect])
    res = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == EXIT_USAGE and "Traceback" not in res.stderr, res.stderr
    assert words in res.stderr and "nothing changed" in res.stderr, res.stderr
    assert password_hash(db) == before
