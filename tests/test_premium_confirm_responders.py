"""A responder's answer to a premium confirmation confirms nothing (R-4.3, "Only a person's mail
confirms"), over SMTP against the running daemon.

The staff mail's rules leave an out-of-office subject without a supporting header, `Precedence:
bulk` and `X-Loop` to a person, and a responder carrying only those confirmed the service's
address: the public's paid SMS were then mailed to a mailbox nobody read. A person's Reply from
Outlook ("RE: Confirm premium SMS service KP123") still confirms.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_bounces import delivered
from tests.test_premium_bounces import NOT_A_CONFIRMATION, add_service, config, vote
from tests.test_premium_loop import CLIENT

SUBJECT = "Confirm premium SMS service KP123"  # the confirmation's, as the client's server quotes it
LOOKS_AUTOMATIC = "550 5.7.1 This looks like an automatic reply"

# (subject, headers besides From/To/Date/Message-ID): what the attack's responders sent.
RESPONDERS = {
    "out_of_office": (f"Out of Office: {SUBJECT}", {}),
    "automatic_reply": (f"Automatic reply: {SUBJECT}", {}),
    "polish_autoreply": (f"Autoodpowiedź: {SUBJECT}", {}),
    "polish_confirmation": ("Odpowiedź automatyczna: Potwierdzenie usługi SMS premium KP123", {}),
    "template_after": (f"{SUBJECT} [Auto-Reply]", {}),
    "precedence_bulk": (f"Re: {SUBJECT}", {"Precedence": "bulk"}),
    "x_loop": (f"Re: {SUBJECT}", {"X-Loop": CLIENT}),
    "vacation": (f"Re: {SUBJECT}", {"In-Reply-To": "", "Precedence": "bulk", "X-Loop": CLIENT}),
}


def mail_to(ask: EmailMessage, subject: str, headers: dict[str, str], body: str) -> bytes:
    """A mail from the client's address to the confirmation's Reply-To; an empty In-Reply-To is
    filled with the confirmation's Message-ID, as a reply names it."""
    msg = EmailMessage()
    msg["From"] = CLIENT
    msg["To"] = ask["Reply-To"]
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="acme.pl")
    for name, value in headers.items():
        msg[name] = value or ask["Message-ID"]
    msg.set_content(body)
    return msg.as_bytes()


@pytest.mark.parametrize(("subject", "headers"), list(RESPONDERS.values()), ids=list(RESPONDERS))
async def test_a_responders_answer_does_not_confirm_a_premium_address(
    tmp_path: Path, subject: str, headers: dict[str, str]
) -> None:
    relay = free_port()
    path, cfg = config(tmp_path, relay, fallback=True)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        ask = await add_service(gw, path, sink)
        assert ask["Subject"] == SUBJECT
        confirm = ask["Reply-To"].addresses[0].addr_spec
        await vote(gw)
        db = gw.store.db.conn
        await gw.until(lambda: db.execute("SELECT state FROM premium_mo").fetchone() == ("awaiting",))
        raw = mail_to(ask, subject, headers, "I am away until Monday.\n")
        said = await delivered(gw.port, raw, CLIENT, rcpt=confirm)
        after = (
            db.execute("SELECT verified_at FROM premium_services").fetchone(),
            db.execute("SELECT used_at FROM premium_verifications").fetchone(),
            db.execute("SELECT state FROM premium_mo").fetchone(),
        )
        sms = len(gw.daemon.simulator.core.records)
    if headers:  # a responder's mark: recorded, the responder told 250 (nothing for it to answer)
        assert said.startswith(NOT_A_CONFIRMATION) and "not a confirmation" in said, said
    else:  # the subject alone: perhaps a person's words, refused aloud so that they hear why
        assert said.startswith(LOOKS_AUTOMATIC) and "another subject" in said, said
    assert after == ((None,), (None,), ("awaiting",))
    assert len(sink.messages) == 1  # the confirmation alone: no vote mailed, nothing forwarded
    assert sms == 0


async def test_a_persons_reply_from_outlook_still_confirms(tmp_path: Path) -> None:
    # Outlook puts X-Auto-Response-Suppress and Thread-Index on a person's mail, and "RE:" before the
    # subject it answers: none of it is a responder's mark.
    relay = free_port()
    path, cfg = config(tmp_path, relay, fallback=True)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        ask = await add_service(gw, path, sink)
        confirm = ask["Reply-To"].addresses[0].addr_spec
        await vote(gw)
        db = gw.store.db.conn
        await gw.until(lambda: db.execute("SELECT state FROM premium_mo").fetchone() == ("awaiting",))
        outlook = {
            "In-Reply-To": "",
            "X-Auto-Response-Suppress": "All",
            "Thread-Index": "AQHa1b2c3d4e5f6g7h8i9j0k",
            "X-Mailer": "Microsoft Outlook 16.0",
        }
        raw = mail_to(ask, f"RE: {SUBJECT}", outlook, "Yes, that is us.\n")
        said = await delivered(gw.port, raw, CLIENT, rcpt=confirm)
        await sink.wait(2)
        state = db.execute("SELECT state FROM premium_mo").fetchone()
    assert said.startswith("250") and "not a confirmation" not in said, said
    assert state == ("mailed",)


def nested(depth: int) -> bytes:
    """A body of `depth` multiparts, each in the next: past what the intake reads (MIME nesting)."""
    body = b"Content-Type: text/plain\r\n\r\nI am away\r\n"
    for i in range(depth):
        b = f"b{i}".encode()
        body = b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n" + body
        body += b"\r\n--" + b + b"--\r\n"
    return body


async def test_an_auto_submitted_mail_the_intake_refuses_to_read_does_not_confirm(tmp_path: Path) -> None:
    # Its Auto-Submitted was read only for a mail the intake read: nested too deep to read, it confirmed.
    relay = free_port()
    path, cfg = config(tmp_path, relay, fallback=True)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        ask = await add_service(gw, path, sink)
        confirm = ask["Reply-To"].addresses[0].addr_spec
        head = (
            f"From: {CLIENT}\r\nTo: {confirm}\r\nSubject: Re: {SUBJECT}\r\nAuto-Submitted: auto-replied\r\n"
        )
        raw = head.encode() + b"MIME-Version: 1.0\r\n" + nested(50)
        said = await delivered(gw.port, raw, CLIENT, rcpt=confirm)
        verified = gw.store.db.conn.execute("SELECT verified_at FROM premium_services").fetchone()
    assert said.startswith(NOT_A_CONFIRMATION), said
    assert verified == (None,)
