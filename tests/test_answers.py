"""The user answers a reply mail (issue 10): the phone gets exactly what the user typed.

Over real SMTP against the daemon with its built-in SMSC, and a real SMTP sink catching the reply
mail: Reply in a `>`-quoting client, Reply in Outlook (header block, "RE:", no threading headers),
a changed subject, and a fresh mail to the same phone.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway import forwarded
from gateway.conversations.answers import reply_topic
from gateway.smtp.textclean import clean_body
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import answer_to, parsed, two_way_config


def outlook_answer(reply: EmailMessage, body: str) -> EmailMessage:
    """Outlook's Reply in plain text: "RE:", the original under a From/Sent/To/Subject block."""
    msg = EmailMessage()
    msg["From"] = STAFF
    msg["To"] = reply["From"]
    msg["Subject"] = f"RE: {reply['Subject']}"
    original = reply.get_content()
    msg.set_content(
        f"{body}\r\n\r\nFrom: {reply['From']}\r\nSent: Thursday, January 15, 2027 8:00 AM\r\n"
        f"To: {STAFF}\r\nSubject: {reply['Subject']}\r\n\r\n{original}"
    )
    return msg


async def test_answers_to_a_reply_mail_reach_the_phone_as_typed(tmp_path: Path) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        first = mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?", subject="Spotkanie")
        assert (await gw.send(first)).error is None
        await gw.until(lambda: len(core.records) == 1)
        assert core.records[0]["text"] == "Spotkanie: Czy 10:00 pasuje?"
        command = {"op": "mo", "reply_to_last": True, "text": "Tak, będę o 10:00"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await sink.wait(1)
        reply = parsed(sink.messages[0][2])
        assert reply["Subject"] == "Re: Spotkanie (SMS from +48 601 123 456)"
        assert reply["Thread-Topic"] == "Spotkanie"

        async def sms_for(answer: EmailMessage) -> str:
            before = len(core.records)
            assert (await gw.send(answer)).error is None
            await gw.until(lambda: len(core.records) == before + 1)
            return str(core.records[-1]["text"])

        assert await sms_for(answer_to(reply, "Świetnie, do zobaczenia")) == "Świetnie, do zobaczenia"
        # The phone answers again, after the user's Reply became the conversation's subject: the
        # mail still names the phone once, and keeps the topic (it had no Thread-Topic at all).
        command = {"op": "mo", "reply_to_last": True, "text": "Do jutra"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await sink.wait(2)
        again = parsed(sink.messages[1][2])
        assert again["Subject"].count("(SMS from +48 601 123 456)") == 1
        assert again["Thread-Topic"] == "Spotkanie"
        assert await sms_for(outlook_answer(reply, "A jednak 11:00?")) == "A jednak 11:00?"
        changed = answer_to(reply, "Sala 4")
        changed.replace_header("Subject", "Zmiana sali")
        assert await sms_for(changed) == "Zmiana sali: Sala 4"
        fresh = mail(f"601123456@{DOMAIN}", body="Proszę o potwierdzenie", subject="Faktura")
        assert await sms_for(fresh) == "Faktura: Proszę o potwierdzenie"
        # Reply on the first reply mail, though the conversation's subject is "Faktura" now.
        back = "Wracając do spotkania: 11:00"
        assert await sms_for(answer_to(reply, back)) == back


async def test_an_answer_naming_our_reply_drops_the_subject_after_the_window(tmp_path: Path) -> None:
    # In-Reply-To names our reply mail: still an answer, though the conversation's window is over.
    relay = free_port()
    now = [1_800_000_000.0]
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: now[0]) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="ping", subject="Spotkanie"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        command = {"op": "mo", "reply_to_last": True, "text": "pong"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await sink.wait(1)
        reply = parsed(sink.messages[0][2])
        assert ".sms-reply@" in reply["Message-ID"]
        now[0] += 8 * 86400
        assert (await gw.send(answer_to(reply, "Late, sorry"))).error is None
        await gw.until(lambda: len(core.records) == 2)
        assert core.records[1]["text"] == "Late, sorry"
        now[0] += 8 * 86400
        plain = answer_to(reply, "No thread")
        del plain["In-Reply-To"], plain["References"]
        assert (await gw.send(plain)).error is None  # no thread, no live conversation: a normal mail
        await gw.until(lambda: len(core.records) == 3)
        assert core.records[2]["text"] == "Spotkanie: No thread"  # no reply prefix on the phone


async def test_a_retry_of_the_mail_that_opened_a_conversation_is_not_sent_again(tmp_path: Path) -> None:
    # the first copy opens the conversation, which made the retry an answer (subject
    # dropped), a new text and so a new mail: the phone got the SMS twice.
    cfg = two_way_config(tmp_path, "smpp", relay_port=free_port())
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        msg = mail(f"601123456@{DOMAIN}", body="Spotkanie o 10:00", subject="Spotkanie")
        msg["Message-ID"] = "<retry-after-lost-250@acme.example>"
        assert (await gw.send(msg)).error is None
        await gw.until(lambda: len(core.records) == 1)
        assert (await gw.send(msg)).error is None
        marker = mail(f"601123457@{DOMAIN}", body="Marker")  # a second SMS would be queued before it
        assert (await gw.send(marker)).error is None
        await gw.until(lambda: any(r["text"] == "Marker" for r in core.records))
        assert [r["text"] for r in core.records] == ["Spotkanie: Spotkanie o 10:00", "Marker"]
        assert gw.store.admin.count_messages() == 2


@pytest.mark.parametrize(
    ("subject", "topic"),
    [
        ("Re: Spotkanie", "Spotkanie"),
        ("RE: Odp: AW: Spotkanie", "Spotkanie"),
        ("Re[2]: Spotkanie", "Spotkanie"),
        ("Odp: Re: SMS from +48 601 123 456", "SMS from +48 601 123 456"),
        ("Re:", ""),
        ("Rezerwacja: sala", "Rezerwacja: sala"),  # a word, not a prefix
        ("Spotkanie", "Spotkanie"),
    ],
)
def test_reply_prefixes_are_taken_off_a_subject(subject: str, topic: str) -> None:
    assert reply_topic(subject) == topic


def test_the_header_above_the_sms_quoted_in_our_reply_is_cut() -> None:
    # A client that quotes without `>` on that line leaves our own "wrote to" header in the answer.
    body = "OK\n\nOn 2027-01-15 08:00, you wrote to +48 601 123 456:\n> Czy 10:00 pasuje?\n"
    assert clean_body(body).text == "OK"


@pytest.mark.parametrize(
    ("phone", "shown", "subject", "title"),
    [
        ("+48601123456", "+48 601 123 456", "Spotkanie", "Re: Spotkanie (SMS from +48 601 123 456)"),
        ("+48601123456", "+48 601 123 456", "RE: Spotkanie", "RE: Spotkanie (SMS from +48 601 123 456)"),
        # A short code whose digits are inside another number of the subject: still named.
        ("8080", "8080", "Order 80801", "Re: Order 80801 (SMS from 8080)"),
        # The fallback's subject names the phone already.
        ("+48601123456", "+48 601 123 456", "SMS from +48601123456 to 7355 (no conversation)",
         "SMS from +48601123456 to 7355 (no conversation)"),
    ],
)  # fmt: skip
def test_a_reply_mail_subject_names_the_phone_once(phone: str, shown: str, subject: str, title: str) -> None:
    raw = forwarded.sms_reply(
        phone=phone,
        phone_display=shown,
        domain=DOMAIN,
        rcpt=STAFF,
        subject=subject,
        text="Tak",
        quoted=None,
        quoted_at=None,
        in_reply_to=None,
    )
    assert parsed(raw)["Subject"] == title


async def test_a_long_subject_keeps_its_whole_topic_for_outlook(tmp_path: Path) -> None:
    # The Subject of the answer mail is cut to fit "(SMS from …)"; its Thread-Topic was cut with it,
    # so it no longer matched the topic Outlook stored for the user's mail and the thread split.
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    topic = "Zażółć gęślą jaźń – bardzo długi temat wiadomości o spotkaniu zarządu w przyszłym tygodniu"
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        first = mail(f"601123456@{DOMAIN}", body="Proszę o potwierdzenie", subject=f"RE: Odp: {topic}")
        assert (await gw.send(first)).error is None
        await gw.until(lambda: len(core.records) >= 1)
        command = {"op": "mo", "reply_to_last": True, "text": "Potwierdzam"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await sink.wait(1)
        reply = parsed(sink.messages[0][2])
        assert reply["Thread-Topic"] == topic
        assert reply["Subject"].endswith("… (SMS from +48 601 123 456)")  # the subject is still cut
        # The user answers the reply mail in Outlook, and the phone answers again: the topic is still
        # the whole one (it was taken from the user's "RE: Re: … (SMS from …)", cut, and the thread split).
        before = len(core.records)
        assert (await gw.send(outlook_answer(reply, "Dziękuję"))).error is None
        await gw.until(lambda: len(core.records) == before + 1)
        command = {"op": "mo", "reply_to_last": True, "text": "Proszę bardzo"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await sink.wait(2)
        again = parsed(sink.messages[1][2])
        assert again["Thread-Topic"] == topic
        assert again["Subject"] == reply["Subject"]  # no "RE: Re:" stacked before it
