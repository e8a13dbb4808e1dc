"""SMTP replies that quote stored text (an account's name, a suspension reason) reach the client as
the refusal they are: ASCII on one line. A Polish reason or name raised while the reply was written
(no SMTPUTF8), and the client got `451` to retry for days instead of `550`; a CR LF in a reason
wrote a second reply that the client read as the answer to its next command. Real SMTP sessions
against the running gateway, its settings changed in its SQLite file as the CLI changes them."""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

from gateway.store.db import Store
from tests.conftest import DOMAIN, STAFF, free_port, make_config, running_gateway

LODZ_USER = "ola@lodz.example"
EXTRA = f'\n[[account]]\nname = "Biuro Łódź"\nrelay_networks = ["127.0.0.2/32"]\nusers = ["{LODZ_USER}"]\n'


def session(port: int, sender: str, source: str, data: bytes | None = None) -> list[tuple[int, str]]:
    """MAIL, RCPT, DATA if given, then NOOP: the refusal and what the next command is answered."""
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as c:
        c.ehlo("client.example")
        replies = [c.mail(sender), c.rcpt(f"601123456@{DOMAIN}")]
        replies += [c.data(data)] if data is not None else []
        replies.append(c.noop())
    return [(code, text.decode("ascii")) for code, text in replies]


async def test_a_polish_suspension_reason_is_a_550_in_ascii_and_cannot_forge_a_reply(tmp_path: Path) -> None:
    config = make_config(tmp_path, smsc_port=free_port())
    async with running_gateway(config) as gw:
        admin = Store.open(config.db_path)
        acme = admin.accounts.get_account("acme")
        admin.policy.suspend_account(acme.id, "Zaległa faktura „12/2026”\r\n250 2.1.5 forged")
        admin.close()
        replies = await asyncio.to_thread(session, gw.port, STAFF, "127.0.0.1")
    assert replies[0] == (
        550,
        '5.7.1 Account acme is suspended: Zalegla faktura "12/2026"  250 2.1.5 forged;'
        " ask the gateway's admin to resume it (smsgw account resume)",
    )
    assert replies[-1][0] == 250 and "forged" not in replies[-1][1]  # NOOP's own answer, in step


async def test_a_limit_refusal_naming_a_polish_account_is_a_550(tmp_path: Path) -> None:
    config = make_config(tmp_path, smsc_port=free_port(), extra=EXTRA)
    async with running_gateway(config) as gw:
        admin = Store.open(config.db_path)
        admin.accounts.update_account("Biuro Łódź", daily_limit=0)
        admin.close()
        mail = b"Subject: x\r\n\r\nTekst\r\n"
        replies = await asyncio.to_thread(session, gw.port, LODZ_USER, "127.0.0.2", mail)
    code, text = replies[2]
    assert (code, text.split(":")[0]) == (550, "5.7.1 Daily limit of account Biuro Lodz")


async def test_a_suspension_is_told_only_to_the_accounts_own_network_and_in_one_short_line(
    tmp_path: Path,
) -> None:
    # Another company's mail server (on the network of account "Biuro Łódź") learnt that acme was
    # suspended, and why, by naming an acme user; and a long reason made a 3,440-byte reply line.
    config = make_config(tmp_path, smsc_port=free_port(), extra=EXTRA)
    async with running_gateway(config) as gw:
        admin = Store.open(config.db_path)
        admin.accounts.set_account_networks("acme", add=["127.0.0.1/32"], remove=["127.0.0.0/8"])
        admin.policy.suspend_account(admin.accounts.get_account("acme").id, "Zaległa płatność " * 200)
        admin.close()
        own = await asyncio.to_thread(session, gw.port, STAFF, "127.0.0.1")
        other = await asyncio.to_thread(session, gw.port, STAFF, "127.0.0.2")
    code, text = own[0]
    assert code == 550 and text.startswith("5.7.1 Account acme is suspended: Zalegla platnosc")
    assert len(f"{code} {text}") <= 510 and text.endswith("...")
    assert other[0][0] == 550 and "suspended" not in other[0][1] and "Zalegla" not in other[0][1]
