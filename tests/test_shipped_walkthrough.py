"""The README's walkthroughs on the shipped config, as a newcomer types them: the daemon as a process,
the `smsgw` commands in subprocesses, the mail that comes back read from the maildir capture."""

from __future__ import annotations

import asyncio
import email
import signal
import sqlite3
from collections.abc import Callable
from contextlib import closing
from email import policy
from pathlib import Path

from tests.conftest import free_port, mail, send_blocking
from tests.test_process import ROOT, smsgw, start_daemon


def shipped_config(tmp_path: Path, smtp: int) -> Path:
    """The shipped config.toml with free ports and its state under tmp_path; nothing else changed."""
    text = (ROOT / "config.toml").read_text()
    smpp, cimd2, control, web = free_port(), free_port(), free_port(), free_port()
    for old, new in (
        # The panel's port too: two tests on the shipped config at once (pytest-xdist) both took 8080.
        ('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{web}"'),
        ("smpp_port = 2775", f"smpp_port = {smpp}"),
        ("port = 2775", f"port = {smpp}"),
        ("cimd2_port = 9971", f"cimd2_port = {cimd2}"),
        ("control_port = 2776", f"control_port = {control}"),
        ('listen = "127.0.0.1:2525"', f'listen = "127.0.0.1:{smtp}"'),
        ('submission_listen = "127.0.0.1:2587"', 'submission_listen = "127.0.0.1:0"'),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "config.toml"  # relative paths (var/...) resolve next to it
    path.write_text(text)
    return path


async def until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


def mails(tmp_path: Path) -> list[email.message.EmailMessage]:
    folder = tmp_path / "var" / "mail"
    files = sorted(folder.glob("*.eml")) if folder.exists() else []
    return [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]  # type: ignore[misc]


async def test_the_premium_walkthrough_works_on_the_shipped_config(tmp_path: Path) -> None:
    # Issue 11: `smsgw simulator send-mo --to 7355 "KP123 vote A"` on the shipped config reaches the
    # client's mailbox (here the maildir capture) once its address is confirmed.
    smtp = free_port()
    config = shipped_config(tmp_path, smtp)
    proc = await start_daemon(config, smtp)
    try:
        out = await asyncio.to_thread(
            smsgw, config, "premium", "add", "KP123", "--account", "demo", "--email", "konkurs@example.com"
        )
        assert out.returncode == 0, out.stderr
        await until(lambda: len(mails(tmp_path)) == 1)  # the confirmation
        confirm = mails(tmp_path)[0]["Reply-To"].addresses[0].addr_spec
        answer = mail(confirm, "yes", "Re: Confirm")
        answer.replace_header("From", "konkurs@example.com")
        res = await asyncio.to_thread(send_blocking, smtp, answer, [confirm], sender="konkurs@example.com")
        assert res.error is None, res.error
        sent = await asyncio.to_thread(smsgw, config, "simulator", "send-mo", "--to", "7355", "KP123 vote A")
        assert sent.returncode == 0, sent.stderr
        await until(lambda: len(mails(tmp_path)) == 2)
        vote = mails(tmp_path)[1]
        assert vote["Subject"] == "KP123 · 7355 · +48 601 123 456"
        assert vote.get_content().split("\n")[0] == "vote A"
        with closing(sqlite3.connect(tmp_path / "var" / "smsgw.db")) as db:
            assert db.execute("SELECT phone, price, commission FROM premium_mo").fetchall() == [
                ("+48601123456", 300, 110)
            ]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
