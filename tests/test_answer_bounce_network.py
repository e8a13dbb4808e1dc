"""A bounce fails a phone's answer mail only when it comes from the answer's side, with the null
envelope sender and from no user: a network of the account the answer belongs to, or the mail relay
the answer went out through, whether its DSN names the answer's recipient or none.

A client on another company's relay network could send `MAIL FROM:<>` with a plain text quoting
the Message-ID of an answer mail to one of the first company's users: the answer was failed, its
copy went to the fallback address and the company's bill showed it failed. Now such a bounce is
forwarded as any bounce, and the answer stays sent; from the company's own network it still fails
the answer. The real daemon, the simulator over SMPP answering as the phone, a real SMTP sink for the
relay, the bounces delivered to the relay port from the two companies' addresses.

A DSN naming the answer's recipient was taken from anywhere: from the other company's network, and
over the submission port from its logged-in user with their own envelope sender. It needs only the
answer's Message-ID and recipient, both in any forwarded copy of the answer.
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path
from typing import Any

from gateway.config import parse_config
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, config_text, free_port, running_gateway, smtp_sink
from tests.test_answer_bounced_later import dsn
from tests.test_bounces import parsed
from tests.test_own_numbers import FALLBACK, OURS
from tests.test_reply_refused import outbox, sms_and_answer
from tests.test_submission import PASSWORD, client_tls, with_password

BOB = "bob@beta.example"
ACME, BETA = "127.0.0.2", "127.0.0.3"  # 127.0.0.1 is acme's too: the tests' own mail comes from it


def config(tmp_path: Path, relay: int) -> Any:
    smpp, control = free_port(), free_port()
    cert, key = make_cert_pair(tmp_path / "tls")
    text = config_text(
        tmp_path,
        smsc_port=smpp,
        relay_port=relay,
        default_sender=OURS,
        extra=f'\n[[account]]\nname = "beta"\nrelay_networks = ["{BETA}/32"]\nusers = ["{BOB}"]\n'
        f'\n[replies]\nfallback_address = "{FALLBACK}"\n',
    )
    text = text.replace(
        'relay_networks = ["127.0.0.0/8"]', f'relay_networks = ["127.0.0.1/32", "{ACME}/32"]', 1
    )
    anchor = 'submission_listen = "127.0.0.1:0"\n'
    text = text.replace(anchor, f'{anchor}tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n', 1)
    text = text.replace(f'sender = "{OURS}"\n', "", 1).replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {free_port()}\n"
        f"control_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    return parse_config(text, source="test", base_dir=tmp_path)


def plain_bounce(answer_id: str, own_id: str) -> bytes:
    """A bounce as a text alone, no DSN part: it quotes the answer mail's headers."""
    return (
        "From: MAILER-DAEMON@mail.example\r\nTo: smsgw@sms.example.com\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: {own_id}\r\n"
        "Auto-Submitted: auto-replied\r\nContent-Type: text/plain\r\n\r\n"
        "This is the mail system. Your message could not be delivered.\r\n\r\n"
        f"--- original headers ---\r\nMessage-ID: {answer_id}\r\nFrom: +48601222222@sms.example.com\r\n"
    ).encode()


def deliver(port: int, raw: bytes, rcpt: str, source: str) -> str:
    """One session with the null sender from `source`; the reply to DATA."""
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as c:
        c.ehlo("mx.example")
        assert c.mail("")[0] == 250
        assert c.rcpt(rcpt)[0] == 250
        code, text = c.data(raw)
        return f"{code} {text.decode()}"


async def test_a_bounce_naming_no_recipient_fails_an_answer_only_from_its_companys_network(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with smtp_sink(port) as relay, running_gateway(config(tmp_path, port)) as gw:
        await sms_and_answer(gw)
        await gw.until(lambda: outbox(gw) == [("reply", STAFF, "sent")])
        await relay.wait(1)
        answer_id = parsed(relay.messages[0][2])["Message-ID"]
        rcpt = gw.config.mail.from_address
        forged = plain_bounce(answer_id, "<b1@beta.example>")
        said = await asyncio.to_thread(deliver, gw.port, forged, rcpt, BETA)
        assert said.startswith("250 "), said
        await gw.until(lambda: ("bounce-forward", FALLBACK) in [row[:2] for row in outbox(gw)])
        # Forwarded as any bounce; the answer is not failed, no copy of it goes.
        assert [row[:2] for row in outbox(gw)] == [("reply", STAFF), ("bounce-forward", FALLBACK)]
        assert outbox(gw)[0] == ("reply", STAFF, "sent")
        await relay.wait(2)
        forward = str(parsed(relay.messages[1][2]).get_body(("plain",)).get_content())
        assert "A bounce of the mail with the answer" not in forward, forward
        # The same from acme's own mail server is the answer's bounce.
        own = plain_bounce(answer_id, "<b2@acme.example>")
        said = await asyncio.to_thread(deliver, gw.port, own, rcpt, ACME)
        assert said.startswith("250 "), said
        await gw.until(lambda: len(outbox(gw)) == 4)
        kinds = [(kind, to) for kind, to, _ in outbox(gw)]
        assert kinds[2:] == [("reply-fallback", FALLBACK), ("bounce-forward", FALLBACK)], kinds
        assert outbox(gw)[0] == ("reply", STAFF, "failed")


def submitted(port: int, tls: Path, raw: bytes, rcpt: str) -> str:
    """bob's mail over the submission port, logged in, from his own address; the reply to DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("beta.example")
        c.starttls(context=client_tls((tls, tls)))
        c.ehlo("beta.example")
        c.login(BOB, PASSWORD)
        assert c.mail(BOB)[0] == 250
        assert c.rcpt(rcpt)[0] == 250
        code, text = c.data(raw)
        return f"{code} {text.decode()}"


def forwards(gw: Any) -> int:
    return [kind for kind, *_ in outbox(gw)].count("bounce-forward")


async def answer_sent(gw: Any, relay: Any) -> str:
    """The phone's answer mailed to STAFF: its Message-ID."""
    await sms_and_answer(gw)
    await gw.until(lambda: outbox(gw) == [("reply", STAFF, "sent")])
    await relay.wait(1)
    return str(parsed(relay.messages[0][2])["Message-ID"])


async def test_a_dsn_naming_the_answers_recipient_fails_it_only_from_its_companys_network(
    tmp_path: Path,
) -> None:
    """From the other company's network, with the null sender, a DSN naming the answer's recipient
    is forwarded as any bounce: the answer stays sent, no copy goes. From acme's it fails it."""
    port = free_port()
    async with smtp_sink(port) as relay, running_gateway(config(tmp_path, port)) as gw:
        answer_id = await answer_sent(gw, relay)
        rcpt = gw.config.mail.from_address
        said = await asyncio.to_thread(deliver, gw.port, dsn(answer_id, "<n1@beta.example>"), rcpt, BETA)
        assert said.startswith("250 "), said
        await gw.until(lambda: forwards(gw) == 1)
        assert [row[:2] for row in outbox(gw)] == [("reply", STAFF), ("bounce-forward", FALLBACK)]
        assert outbox(gw)[0] == ("reply", STAFF, "sent")
        said = await asyncio.to_thread(deliver, gw.port, dsn(answer_id, "<n3@acme.example>"), rcpt, ACME)
        assert said.startswith("250 "), said
        await gw.until(lambda: forwards(gw) == 2)
        kinds = [row[:2] for row in outbox(gw)][2:]
        assert kinds == [("reply-fallback", FALLBACK), ("bounce-forward", FALLBACK)], kinds
        assert outbox(gw)[0] == ("reply", STAFF, "failed")


async def test_a_dsn_a_logged_in_user_submits_fails_no_answer(tmp_path: Path) -> None:
    """The other company's user, logged in on the submission port with their own envelope sender,
    submits a DSN naming the answer's recipient to a phone address: a report, recorded and forwarded
    as any, not sent as SMS; the answer stays sent and no copy of it goes."""
    port = free_port()
    async with smtp_sink(port) as relay, running_gateway(config(tmp_path, port)) as gw:
        answer_id = await answer_sent(gw, relay)
        await with_password(gw, BOB)
        tls = tmp_path / "tls" / "cert.pem"
        forged = dsn(answer_id, "<n2@beta.example>")
        phone = f"601333333@{DOMAIN}"
        said = await asyncio.to_thread(submitted, gw.daemon.submission_port, tls, forged, phone)
        assert said.startswith("250 "), said
        await gw.until(lambda: forwards(gw) == 1)
        assert [row[:2] for row in outbox(gw)] == [("reply", STAFF), ("bounce-forward", FALLBACK)]
        assert outbox(gw)[0] == ("reply", STAFF, "sent")
        sms = gw.store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        assert sms == 1, sms  # the user's SMS alone: the submitted report is none
