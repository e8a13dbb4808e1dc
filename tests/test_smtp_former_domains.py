"""`[gateway] domains` changed (sms.old.example dropped, sms.example.com added) while a conversation's
answer mails and a premium confirmation are out on the old domain: the CLI as processes on a real
SQLite file, the relay port in the daemon and in an intake worker, the start as `smsgw run`.

Replies to them were refused at RCPT as relay spam (`550 5.7.1 Relay access denied`), and neither
check-config nor the start said a word. They now hear the address to write to instead, and both warn.
"""

from __future__ import annotations

import asyncio
import signal
import smtplib
import sqlite3
from pathlib import Path

from gateway.config import parse_config
from gateway.conversations.repo import ConversationsRepo
from gateway.store.db import Store
from tests.conftest import DOMAIN, STAFF, config_text, free_port, running_gateway
from tests.test_cli_errors import run, write_config
from tests.test_process import start_daemon
from tests.test_relay_network_shared import logged
from tests.test_session_limits import blocking

OLD = "sms.old.example"
PHONE = "+48601123456"
PREMIUM = '\n[premium]\nnumbers = ["7355"]\n'


def moved(address: str, domain: str, instead: str) -> tuple[int, str]:
    return 551, f"5.1.6 <{address}>: {domain} is no longer served by this gateway; please try <{instead}>"


def renamed(tmp_path: Path, smtp_port: int = 0, intake: int = 0) -> tuple[Path, str, str]:
    """A premium service added and a conversation kept on OLD; then the config's domain is DOMAIN.
    Returns the config and the confirmation token, and the config's text."""
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port) + PREMIUM
    text = text.replace("[smtp]\n", f"[smtp]\nintake_processes = {intake}\n", 1)
    path = write_config(tmp_path, text.replace(f'domains = ["{DOMAIN}"]', f'domains = ["{OLD}"]', 1))
    (tmp_path / "state").mkdir()
    for args in (
        ("account", "add", "beta"),
        ("premium", "add", "KP123", "--account", "beta", "--email", "k@example.org"),
    ):
        res = run(path, *args)
        assert res.returncode == 0, (args, res.stderr)
    cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
    store = Store.open(cfg.db_path)
    try:
        ConversationsRepo(store.db, store.clock).record_mt(
            phone=PHONE,
            number="+48100200300",
            user_email=STAFF,
            account_id=None,
            domain=OLD,
            header_message_id=None,
            subject=None,
            text="hello phone",
        )
    finally:
        store.close()
    with sqlite3.connect(cfg.db_path) as conn:
        [(token,)] = conn.execute("SELECT token FROM premium_verifications").fetchall()
    path.write_text(text)
    return path, token, text


def rcpts(port: int, addresses: list[str]) -> list[tuple[int, str]]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("x")
        c.mail(STAFF)
        return [(code, text.decode()) for code, text in (c.rcpt(a) for a in addresses)]


def test_check_config_names_the_dropped_domain_and_the_services_awaiting_confirmation(tmp_path: Path) -> None:
    config, _, _ = renamed(tmp_path)
    check = run(config, "check-config")
    assert check.returncode == 0, check.stderr
    [held] = [line for line in check.stderr.splitlines() if OLD in line and "conversation" in line]
    assert f"[gateway] domains no longer has {OLD}, which 1 stored conversation(s) name" in held, held
    assert f"(<number>@{DOMAIN})" in held and f"keep {OLD} in [gateway] domains" in held, held
    [waiting] = [line for line in check.stderr.splitlines() if "KP123" in line]
    assert "1 premium service(s) (KP123) await confirmation" in waiting, waiting
    assert "`smsgw premium verify PASSWORD --resend`" in waiting, waiting


async def test_rcpt_to_the_dropped_domain_names_the_address_to_write_to(tmp_path: Path) -> None:
    _, token, text = renamed(tmp_path)
    async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
        confirm = f"confirm-{token}"
        answers = await blocking(
            lambda: rcpts(
                gw.port,
                [
                    f"{PHONE}@{OLD}",  # the From of the conversation's answer mails
                    f'"601 123 456"@{OLD}',  # any address on it: the domain has moved
                    f"{confirm}@{OLD}",
                    f"{confirm}@elsewhere.example",  # the token alone tells it
                    f"{PHONE}@elsewhere.example",  # relay spam, as before
                    f"confirm-{'a' * 24}@elsewhere.example",  # no such token
                ],
            )
        )
    assert answers[:4] == [
        moved(f"{PHONE}@{OLD}", OLD, f"{PHONE}@{DOMAIN}"),
        moved(f'"601 123 456"@{OLD}', OLD, f'"601 123 456"@{DOMAIN}'),
        moved(f"{confirm}@{OLD}", OLD, f"{confirm}@{DOMAIN}"),
        # The token alone tells it on a domain never served: not "no longer served" there.
        (551, f"5.1.6 <{confirm}@elsewhere.example>: not served here; please try <{confirm}@{DOMAIN}>"),
    ], answers
    assert [code for code, _ in answers[4:]] == [550, 550], answers
    assert all("Relay access denied" in reply for _, reply in answers[4:]), answers


async def test_the_start_warns_and_an_intake_worker_names_the_address_to_write_to(tmp_path: Path) -> None:
    port = free_port()
    config, token, _ = renamed(tmp_path, smtp_port=port, intake=1)
    proc = await start_daemon(config, port)
    try:
        start = await asyncio.to_thread(logged, tmp_path / "daemon.log", "config.domain_dropped", 1.0)
        answers = await blocking(lambda: rcpts(port, [f"{PHONE}@{OLD}", f"confirm-{token}@{OLD}"]))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    assert answers == [
        moved(f"{PHONE}@{OLD}", OLD, f"{PHONE}@{DOMAIN}"),
        moved(f"confirm-{token}@{OLD}", OLD, f"confirm-{token}@{DOMAIN}"),
    ], answers
    assert len(start) == 2 and {line["level"] for line in start} == {"warning"}, start
    assert f"[gateway] domains no longer has {OLD}" in str(start[0]["detail"]), start
    assert "KP123" in str(start[1]["detail"]), start
