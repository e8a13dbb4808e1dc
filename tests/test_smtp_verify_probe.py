"""A mail server's recipient verification probe (Postfix `reject_unverified_recipient`) hears for each
number the answer its users' mail would.

Postfix probes with `MAIL FROM:<double-bounce@its.host>`, `RCPT TO:<…>` and quits before DATA. That
sender is no user, so the relay port refused it at MAIL: every probe failed and Postfix told each of
the company's users `450 4.1.1 … unverified address`, and no SMS went out. A real SMTP client against
the relay port of the running daemon.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

from gateway.config import parse_config
from gateway.events import GatewayEvents, Notifier
from gateway.premium import handlers
from gateway.smtp import replies
from smsc.base import InboundSms
from tests.conftest import DOMAIN, config_text, running_gateway
from tests.test_session_limits import blocking
from tests.test_smtp_replies import CLIENT, PHONE, premium_config, reply

PROBE = "double-bounce@mx.acme.example"
NOTICE = (
    b"From: MAILER-DAEMON@mx.acme.example\r\nTo: postmaster@" + DOMAIN.encode() + b"\r\n"
    b"Subject: Postmaster Copy: Undelivered Mail\r\n\r\nA bounce of a bounce.\r\n"
)


def probed(port: int, source: str, rcpts: list[str], data: bytes | None = None) -> list[str]:
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as c:
        c.ehlo("mx.acme.example")
        answers = [reply(c.mail(PROBE))]
        answers += [reply(c.rcpt(r)) for r in rcpts]
        if data is not None:
            try:
                answers.append(reply(c.data(data)))
            except smtplib.SMTPResponseException as exc:
                answers.append(f"{exc.smtp_code} {exc.smtp_error.decode()}")
        c.rset()
        return answers


def probe_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    # Only 127.0.0.1 is the client's network: 127.0.0.2 is a mail server anywhere else.
    text = config_text(tmp_path, smsc_port=1).replace(
        'relay_networks = ["127.0.0.0/8"]', 'relay_networks = ["127.0.0.1/32"]'
    )
    return parse_config(text, source="test config", base_dir=tmp_path)


async def test_a_postfix_verification_probe_hears_each_numbers_answer(tmp_path: Path) -> None:
    async with running_gateway(probe_config(tmp_path)) as gw:
        ours = await blocking(lambda: probed(gw.port, "127.0.0.1", [f"601123456@{DOMAIN}", f"12@{DOMAIN}"]))
        theirs = await blocking(lambda: probed(gw.port, "127.0.0.2", [f"601123456@{DOMAIN}"]))
        # A DATA after a probe's numbers has no recipient: a probe's sender sends no SMS.
        sent = await blocking(lambda: probed(gw.port, "127.0.0.1", [f"601123456@{DOMAIN}"], b"Hi\r\n"))
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", countries=["PL"]))
        abroad = await blocking(lambda: probed(gw.port, "127.0.0.1", [f"+4915112345678@{DOMAIN}"]))
        emails = gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
    assert ours[:2] == [replies.OK_SENDER, replies.OK_RCPT], ours
    assert ours[2].startswith("5"), ours  # not a number: the probe learns it, Postfix refuses the mail
    assert theirs[0].startswith("550 5.7.1"), theirs  # from anywhere else, no probe is taken
    assert sent[:2] == [replies.OK_SENDER, replies.OK_RCPT] and sent[2].startswith("503"), sent
    # The network's account's rules answer, as for its users: its countries.
    assert abroad[0] == replies.OK_SENDER and abroad[1].startswith("5"), abroad
    assert emails == 0


async def test_postfix_notices_from_its_double_bounce_sender_still_reach_the_admin(tmp_path: Path) -> None:
    async with running_gateway(probe_config(tmp_path)) as gw:
        answers = await blocking(lambda: probed(gw.port, "127.0.0.1", [f"postmaster@{DOMAIN}"], NOTICE))
        rows = gw.store.db.conn.execute("SELECT mail_from, automatic FROM emails").fetchall()
    assert answers[:2] == [replies.OK_SENDER, replies.OK_RCPT] and answers[2].startswith("250"), answers
    assert [r[0] for r in rows] == [PROBE], rows  # forwarded as from that sender, not a bounce from <>
    assert "administrator" in str(rows[0][1]) or "postmaster" in str(rows[0][1]), rows


async def test_a_probe_of_a_premium_answer_address_is_answered_never_taken(tmp_path: Path) -> None:
    # Postfix verifies the answer address of a vote's mail when the client answers it: the probe
    # hears it known, and a DATA after it is no premium answer from double-bounce@.
    async with running_gateway(premium_config(tmp_path)) as gw:
        store = gw.store
        r = handlers.repo(store)
        account = store.accounts.get_account("acme")
        service = await store.write(lambda: r.add_service("KP123", account.id, CLIENT, [], [CLIENT]))
        await store.write(lambda: r.update_service(service, verified_at=store.clock()))
        events = GatewayEvents(store, Notifier(store, gw.config))
        await events.on_deliver("main", InboundSms(source=PHONE, destination="7355", text="KP123 vote A"))
        token = store.db.conn.execute("SELECT token FROM premium_mo").fetchone()[0]
        to = f"premium-{token}@{DOMAIN}"
        answers = await blocking(lambda: probed(gw.port, "127.0.0.1", [to], b"Subject: x\r\n\r\nThanks\r\n"))
        taken = store.db.conn.execute("SELECT COUNT(*) FROM premium_answers").fetchone()[0]
    assert answers[:2] == [replies.OK_SENDER, replies.OK_RCPT] and answers[2].startswith("503"), answers
    assert taken == 0
