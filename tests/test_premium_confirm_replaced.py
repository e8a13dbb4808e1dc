"""A confirmation `premium verify --resend` replaced, answered after all: the client is told a newer
confirmation mail replaced it and to answer that one. It said "has expired; ask the operator to send a
new one", while the new one the operator had just sent was in the client's inbox. Answered after the
newest confirmed the address, it is told the address is confirmed, as the used one is: not sent to answer
the newest, which the client had done.

Real peers: the daemon, the CLI in its own process on the same database, the client's answers over
real SMTP.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from pathlib import Path

from tests.conftest import DOMAIN, free_port, running_gateway, smtp_sink
from tests.test_premium_loop import CLIENT, premium_config
from tests.test_premium_moved_service import cli, send


def _data_reply(port: int, token: str) -> str:
    """The gateway's reply at DATA, whatever its code (a 250 too, whose words say what it did)."""
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    try:
        client.ehlo()
        client.mail(CLIENT)
        client.rcpt(f"confirm-{token}@{DOMAIN}")
        code, words = client.data(_answer(token).as_bytes())
        return f"{code} {words.decode()}"
    finally:
        client.quit()


def _answer(token: str) -> EmailMessage:
    confirm = EmailMessage()
    confirm["From"], confirm["To"], confirm["Subject"] = CLIENT, f"confirm-{token}@{DOMAIN}", "yes"
    confirm.set_content("yes, that is us")
    return confirm


async def test_a_confirmation_replaced_by_a_resend_says_so(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = premium_config(tmp_path, "smpp", relay)
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        conn = gw.store.db.conn
        tokens = "SELECT token FROM premium_verifications ORDER BY rowid"
        await cli(path, "premium", "add", "KP123", "--account", "acme", "--email", CLIENT)
        await cli(path, "premium", "verify", "KP123", "--resend")
        old, new = (t for (t,) in conn.execute(tokens).fetchall())
        said = await send(gw.port, _answer(old).as_bytes(), f"confirm-{old}@{DOMAIN}")
        assert said == (
            "550 5.7.1 This confirmation was replaced by a newer confirmation mail: answer the newest one"
        ), said
        assert conn.execute("SELECT verified_at FROM premium_services").fetchone()[0] is None
        # The newest confirms.
        assert await send(gw.port, _answer(new).as_bytes(), f"confirm-{new}@{DOMAIN}") is None
        await gw.until(lambda: conn.execute("SELECT verified_at FROM premium_services").fetchone()[0])


async def test_the_replaced_confirmation_answered_after_the_newest_says_confirmed(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = premium_config(tmp_path, "smpp", relay)
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        conn = gw.store.db.conn
        tokens = "SELECT token FROM premium_verifications ORDER BY rowid"
        verified = "SELECT verified_at FROM premium_services"
        await cli(path, "premium", "add", "KP123", "--account", "acme", "--email", CLIENT)
        await cli(path, "premium", "verify", "KP123", "--resend")
        old, new = (t for (t,) in conn.execute(tokens).fetchall())
        assert await send(gw.port, _answer(new).as_bytes(), f"confirm-{new}@{DOMAIN}") is None
        await gw.until(lambda: conn.execute(verified).fetchone()[0])
        at = conn.execute(verified).fetchone()[0]
        said = await asyncio.to_thread(_data_reply, gw.port, old)
        assert said == "250 2.0.0 OK: address already confirmed for premium service KP123", said
        assert await asyncio.to_thread(_data_reply, gw.port, new) == said
        assert conn.execute(verified).fetchone()[0] == at
        # The older token was not used by it: only the newest confirmed.
        used = "SELECT token FROM premium_verifications WHERE used_at IS NOT NULL"
        assert [t for (t,) in conn.execute(used).fetchall()] == [new]
