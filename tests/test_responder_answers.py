"""A responder program answering one of the gateway's answer mails is no SMS (R-1.7).

A phone answers a user's SMS; the gateway mails the answer to the user, whose mailbox answers that
mail by itself: an Exchange "reply using a template" rule ("Thank you for your message"), a
procmail autoresponder ("Re: …", X-Loop), vacation(1) (Precedence: bulk). Each names the answer
mail's id in In-Reply-To as a person's Reply does, and each went to the phone as an SMS: with a phone
that answers automatically too ("I'm driving"), a loop of billed SMS until the identical-text rule
stopped it. They are told apart by a header no person's mail carries, never by
X-Auto-Response-Suppress alone, which Outlook puts on a person's Reply, the product's main way back
to the phone. An "Automatic reply:" around our answer's subject "(SMS from +48 …)" is a responder's
even when it names no mail. Real peers: SMTP into the daemon, the built-in simulator over SMPP, the
answer mail (and any bounce handed to the fallback address) caught by a real SMTP sink.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from gateway.config import parse_config
from tests.conftest import STAFF, config_text, free_port, running_gateway, smtp_sink
from tests.test_oof_to_answers import first_answer, recorded
from tests.test_two_way import answer_to

AUTO = "automatic reply (to the gateway's answer mail)"
OOF = "out-of-office reply (to the gateway's answer mail)"
FALLBACK = "postmaster@acme.example"


def config(tmp_path: Path, relay: int) -> Any:
    """`tests.test_two_way.two_way_config` over SMPP, with a fallback address: a responder's answer
    taken for a bounce would be handed to it, and the sink would see it."""
    smpp, control = free_port(), free_port()
    text = config_text(
        tmp_path,
        smsc_port=smpp,
        relay_port=relay,
        extra=f'\n[replies]\nfallback_address = "{FALLBACK}"\n',
    )
    text = text.replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {free_port()}\n"
        f'control_port = {control}\nlog = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    return parse_config(text, source="test", base_dir=tmp_path)


def answering(answer: EmailMessage, subject: str, text: str, **headers: str) -> EmailMessage:
    """A mail to the answer's From (the phone's address at the gateway) under `subject`."""
    msg = EmailMessage()
    msg["From"] = STAFF
    msg["To"] = answer["From"]
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="acme.example")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg


def deliver(port: int, msg: EmailMessage, envelope_from: str = STAFF) -> tuple[int, str]:
    """The DATA reply the daemon gives, which `send_message` does not return."""
    rcpt = msg["To"].addresses[0].addr_spec
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail(envelope_from)
        code, _ = client.rcpt(rcpt)
        assert code == 250, code
        code, said = client.data(msg.as_bytes())
        return code, said.decode()


async def test_responders_answering_an_answer_mail_are_recorded_not_sent(tmp_path: Path) -> None:
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(config(tmp_path, relay)) as gw:
        core = gw.daemon.simulator.core
        answer = await first_answer(gw, sink)
        aid, asub = answer["Message-ID"], answer["Subject"]
        exchange = dict(X_MS_Exchange_Inbox_Rules_Loop=STAFF, X_Auto_Response_Suppress="All")
        cases: list[tuple[EmailMessage, str, str]] = [
            # Exchange's reply-with-template rule: the template's own subject.
            (
                answering(
                    answer,
                    "Thank you for your message",
                    "This is an automated answer. We will get back to you.",
                    **exchange,
                    In_Reply_To=aid,
                    References=aid,
                    Thread_Topic=asub,
                ),
                STAFF,
                AUTO,
            ),
            # The same rule naming the answer in References only, without X-Auto-Response-Suppress.
            (
                answering(answer, "Thanks, we got it", "We got it.", X_MS_Exchange_Inbox_Rules_Loop=STAFF),
                STAFF,
                AUTO,
            ),
            # procmail: formail -r keeps the subject with "Re:" before it and adds X-Loop.
            (
                answering(
                    answer,
                    f"Re: {asub}",
                    "I will not be reading my mail until Dec 10.",
                    X_Loop=STAFF,
                    In_Reply_To=aid,
                    References=aid,
                ),
                STAFF,
                AUTO,
            ),
            # vacation(1).
            (
                answering(
                    answer,
                    "away from my mail",
                    "I will not be reading my mail for a while.",
                    Precedence="bulk",
                    In_Reply_To=aid,
                ),
                STAFF,
                AUTO,
            ),
            # A responder following RFC 3834 sends from <>: still a responder's, not a bounce.
            (
                answering(
                    answer, "Thank you for your message", "Automated answer.", **exchange, In_Reply_To=aid
                ),
                "",
                f"{AUTO}; bounce (empty envelope sender)",
            ),
            # "Automatic reply:" around our answer's subject, naming no mail at all.
            (answering(answer, f"Automatic reply: {asub}", "I am away until Monday."), STAFF, OOF),
        ]
        cases[1][0]["References"] = aid
        for msg, envelope_from, reason in cases:
            code, said = await asyncio.to_thread(deliver, gw.port, msg, envelope_from)
            assert code == 250 and f"not sent as SMS ({reason})" in said, (msg["Subject"], said)
        await asyncio.sleep(1.0)  # an SMS queued would have reached the simulator by now
        assert len(core.records) == 1, [r["text"] for r in core.records]
        assert recorded(gw)[1:] == [(str(msg["Subject"]), reason) for msg, _, reason in cases]
        assert len(sink.messages) == 1  # recorded only: no bounce to the fallback address, no notice


async def test_a_persons_reply_to_an_answer_mail_still_reaches_the_phone(tmp_path: Path) -> None:
    """Narrow: Outlook puts X-Auto-Response-Suppress on a person's Reply, which names the answer mail
    too; and an inbox rule forwarding a person's mail to the phone adds the loop header but answers
    no answer mail. Both go, as before."""
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(config(tmp_path, relay)) as gw:
        core = gw.daemon.simulator.core
        answer = await first_answer(gw, sink)
        reply = answer_to(answer, "Świetnie, do zobaczenia")
        reply.replace_header("Subject", f"RE: {answer['Subject']}")
        reply["X-Auto-Response-Suppress"] = "All"
        reply["Thread-Topic"] = "Spotkanie (SMS from +48 601 123 456)"
        reply["Thread-Index"] = "AQHbRkQ0X2m4dGhBTkO3b2V4YW1wbGU="
        reply["X-MS-Has-Attach"] = ""
        code, said = await asyncio.to_thread(deliver, gw.port, reply)
        assert code == 250 and "not sent" not in said, said
        await gw.until(lambda: len(core.records) == 2)
        assert "Świetnie, do zobaczenia" in str(core.records[1]["text"])
        forwarded = answering(
            answer, "FW: Dostawa", "Dostawa jutro o 9.", X_MS_Exchange_Inbox_Rules_Loop="jan@acme.example"
        )
        code, said = await asyncio.to_thread(deliver, gw.port, forwarded)
        assert code == 250 and "not sent" not in said, said
        await gw.until(lambda: len(core.records) == 3)
        assert "Dostawa jutro o 9." in str(core.records[2]["text"])
        assert [reason for _, reason in recorded(gw)] == [None, None, None]
