"""An out-of-office reply to one of the gateway's answer mails is no SMS, though it says so only by
its subject (R-1.7).

A phone answers a user's SMS; the gateway mails the answer to the user, whose responder answers
that mail with "Out of Office: Re: Spotkanie (SMS from +48 601 …)". Responders that set none of
Auto-Submitted, X-Autoreply or X-MS-Exchange-Inbox-Rules-Loop (hosted ones, some Exchange setups)
had their notice sent to the customer's phone as an SMS: a subject alone is never enough, as a person
may write "Out of office" themselves. Such a notice names our answer mail's id and wraps its subject
whole, which no person's Reply ("Re: …") does: it is recorded, not sent. The corpus holds no such
responder mail, so it is written here as those responders write it. Real peers: SMTP into the
daemon, the built-in simulator over SMPP, the answer mail caught by a real SMTP sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import answer_to, parsed, two_way_config

PHONE_ADDRESS = f"601123456@{DOMAIN}"


def responder_mail(answer: EmailMessage, word: str, text: str) -> EmailMessage:
    """An out-of-office notice as a responder without RFC 3834 headers writes it: To the answer's
    From, "<word>: <the answer's subject>", In-Reply-To the answer's id, and nothing else of a
    program's (no Auto-Submitted, X-Autoreply, X-Auto-Response-Suppress, Exchange loop header)."""
    msg = EmailMessage()
    msg["From"] = STAFF
    msg["To"] = answer["From"]
    msg["Subject"] = f"{word}: {answer['Subject']}"
    msg["In-Reply-To"] = answer["Message-ID"]
    msg["References"] = answer["Message-ID"]
    msg["Message-ID"] = make_msgid(domain="acme.example")
    msg.set_content(text)
    return msg


def send_and_read_reply(port: int, msg: EmailMessage) -> tuple[int, str]:
    """The DATA reply the daemon gives, which `send_message` does not return."""
    rcpt = msg["To"].addresses[0].addr_spec
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail(STAFF)
        code, _ = client.rcpt(rcpt)
        assert code == 250, code
        code, said = client.data(msg.as_bytes())
        return code, said.decode()


async def first_answer(gw: Any, sink: Any) -> EmailMessage:
    """The user's SMS to the phone, the phone's answer, and the answer mail the sink received."""
    core = gw.daemon.simulator.core
    first = mail(PHONE_ADDRESS, body="Czy 10:00?", subject="Spotkanie", Message_ID="<oof1@acme.example>")
    assert (await gw.send(first)).error is None
    await gw.until(lambda: len(core.records) == 1)
    command = {"op": "mo", "reply_to_last": True, "text": "Tak, będę"}
    assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
    await sink.wait(1)
    answer = parsed(sink.messages[0][2])
    assert answer["Subject"] == "Re: Spotkanie (SMS from +48 601 123 456)"
    assert ".sms-reply@" in answer["Message-ID"]
    return answer


@contextlib.asynccontextmanager
async def answered(tmp_path: Path) -> AsyncIterator[tuple[Any, Any, EmailMessage]]:
    """The daemon, its relay's sink, and the answer mail of `first_answer`."""
    relay = free_port()
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay)) as gw,
    ):
        yield gw, sink, await first_answer(gw, sink)


async def still_sent(core: Any, count: int) -> None:
    """No SMS but the `count` the simulator had."""
    await asyncio.sleep(1.0)  # an SMS queued would have reached the simulator by now
    assert len(core.records) == count, [r["text"] for r in core.records]


def outlook_reply(answer: EmailMessage, text: str, subject: str) -> EmailMessage:
    """A Reply to the answer mail from Outlook: under `subject`, with its `X-Auto-Response-Suppress`."""
    reply = answer_to(answer, text)
    reply.replace_header("Subject", subject)
    reply["X-Auto-Response-Suppress"] = "All"
    return reply


def recorded(gw: Any) -> list[tuple[str, str | None]]:
    return [tuple(r) for r in gw.store.db.conn.execute("SELECT subject, automatic FROM emails ORDER BY id")]


async def test_an_out_of_office_notice_to_an_answer_mail_is_recorded_not_sent(tmp_path: Path) -> None:
    async with answered(tmp_path) as (gw, sink, answer):
        core = gw.daemon.simulator.core
        notices = [
            ("Out of Office", "I am out of the office until Monday."),
            ("Automatic reply", "I am away, back on the 12th."),
            ("Automatyczna odpowiedź", "Jestem na urlopie do poniedziałku."),
            ("Abwesenheitsnotiz", "Ich bin nicht im Büro."),
        ]
        for word, text in notices:
            code, said = await asyncio.to_thread(
                send_and_read_reply, gw.port, responder_mail(answer, word, text)
            )
            assert code == 250 and "out-of-office reply" in said, (word, said)
        await still_sent(core, 1)
        reason = "out-of-office reply (to the gateway's answer mail)"
        assert recorded(gw)[1:] == [(f"{word}: {answer['Subject']}", reason) for word, _ in notices]
        assert len(sink.messages) == 1  # recorded only: not a bounce, nothing goes to anyone
        # The user's own Reply to the same answer mail still goes to the phone.
        assert (await gw.send(answer_to(answer, "Świetnie, do zobaczenia"))).error is None
        await gw.until(lambda: len(core.records) == 2)
        assert "Świetnie, do zobaczenia" in str(core.records[1]["text"])


async def test_an_out_of_office_subject_a_person_writes_still_goes(tmp_path: Path) -> None:
    """Narrow: the notice must wrap our answer's subject. A person who answers the answer mail
    under "Out of office: back on Monday" is sent, as before. Our answer's subject under the
    responder's word is a responder's even when it names no mail (some leave In-Reply-To out):
    nobody types "Out of Office:" before "… (SMS from +48 …)"."""
    async with answered(tmp_path) as (gw, _sink, answer):
        core = gw.daemon.simulator.core
        typed = responder_mail(answer, "Out of office", "Call my colleague, 601 000 000.")
        typed.replace_header("Subject", "Out of office: back on Monday")
        code, said = await asyncio.to_thread(send_and_read_reply, gw.port, typed)
        assert code == 250 and "not sent" not in said.lower(), said
        await gw.until(lambda: len(core.records) == 2)
        assert "Call my colleague" in str(core.records[1]["text"])
        # Our answer's subject under the responder's word, answering no mail of ours: still a responder's.
        fresh = mail(
            PHONE_ADDRESS, body="Wracam w poniedziałek.", subject=f"Out of Office: {answer['Subject']}"
        )
        code, said = await asyncio.to_thread(send_and_read_reply, gw.port, fresh)
        assert code == 250 and "out-of-office reply" in said, said
        await still_sent(core, 2)
        assert recorded(gw)[-1][1] == "out-of-office reply (to the gateway's answer mail)"


# Exchange's "Automatic reply" as mailboxes set to other languages write it (Outlook's own strings).
EXCHANGE_WORDS = [
    "Automatiskt svar",  # Swedish
    "Automatisk svar",  # Danish, Norwegian
    "Automaattinen vastaus",  # Finnish
    "Resposta automática",  # Portuguese
    "Автоматический ответ",  # Russian
    "Автоматична відповідь",  # Ukrainian
    "Automatikus válasz",  # Hungarian
    "Otomatik yanıt",  # Turkish
    "Răspuns automat",  # Romanian
    "Automatická odpoveď",  # Slovak
    "Αυτόματη απάντηση",  # Greek
    "Automatski odgovor",  # Croatian
    "Samodejni odgovor",  # Slovenian
    "Automatinis atsakymas",  # Lithuanian
    "自動応答",  # Japanese
    "自动答复",  # Chinese
    "Fuera de la oficina",  # Spanish, a rule's
]


def exchange_away(answer: EmailMessage, subject: str, text: str) -> EmailMessage:
    """An Exchange out-of-office reply to the answer mail: In-Reply-To it, and the
    `X-Auto-Response-Suppress: All` Exchange puts on it, no RFC 3834 header."""
    msg = responder_mail(answer, "", text)
    msg.replace_header("Subject", subject)
    del msg["References"]
    msg["X-Auto-Response-Suppress"] = "All"
    return msg


async def test_exchange_out_of_office_replies_in_other_languages_are_recorded_not_sent(
    tmp_path: Path,
) -> None:
    """Only 8 languages' words were known: Exchange's replies in Swedish, Finnish, Russian, Japanese,
    ... (16 of 20) reached the phone as SMS, and so did one under the user's own subject, which
    answers the answer mail with Exchange's mark all the same, but under no "RE:"."""
    async with answered(tmp_path) as (gw, sink, answer):
        core = gw.daemon.simulator.core
        subjects = [f"{word}: {answer['Subject']}" for word in EXCHANGE_WORDS]
        subjects.append("Jestem na urlopie do 14.12")
        for subject in subjects:
            msg = exchange_away(answer, subject, "Out of office until Monday; call Ewa, 601 000 000.")
            code, said = await asyncio.to_thread(send_and_read_reply, gw.port, msg)
            assert code == 250 and "not sent" in said.lower(), (subject, said)
        await still_sent(core, 1)
        reasons = [why for _, why in recorded(gw)[1:]]
        assert reasons[:-1] == ["out-of-office reply"] * len(EXCHANGE_WORDS), reasons
        # A subject of its own may be a person's who rewrote a Reply's: they hear it was not sent.
        assert reasons[-1] == "out-of-office reply (by its subject)", reasons
        await sink.wait(2)
        notice = parsed(sink.messages[1][2])
        assert notice["To"] == STAFF and "Jestem na urlopie do 14.12" in str(notice["Subject"]), notice
        # The user's own Reply from Outlook ("RE: …", the same mark) still goes.
        reply = outlook_reply(answer, "Dobrze, dzwonię jutro", f"RE: {answer['Subject']}")
        assert (await gw.send(reply)).error is None
        await gw.until(lambda: len(core.records) == 2)
        assert len(sink.messages) == 2  # no notice but the one


# A person's Reply from Outlook set to these languages, or under a tag a classification tool put first.
PERSON_PREFIXES = ["회신", "[Internal] RE", "השב", "Отг", "Відп", "Antwort", "ΣΧΕΤ", "[EXTERNAL] AW"]


async def test_a_persons_reply_to_an_answer_mail_is_sent_or_its_writer_is_told(tmp_path: Path) -> None:
    """Outlook's `X-Auto-Response-Suppress: All` is on a person's Reply too: one under a prefix not
    known (Korean "회신:", "[Internal] RE:") carries our answer's subject as an out-of-office reply
    does, and was recorded with no SMS and no word to its writer. Known prefixes go; a subject not
    known is a guess, and its writer is told it was not sent."""
    async with answered(tmp_path) as (gw, sink, answer):
        core = gw.daemon.simulator.core
        for n, prefix in enumerate(PERSON_PREFIXES, start=1):
            reply = outlook_reply(answer, f"Dobrze, oddzwonię o {n}", f"{prefix}: {answer['Subject']}")
            code, said = await asyncio.to_thread(send_and_read_reply, gw.port, reply)
            assert code == 250 and "not sent" not in said.lower(), (prefix, said)
            await gw.until(lambda n=n: len(core.records) == n + 1)
            assert f"oddzwonię o {n}" in str(core.records[n]["text"]), prefix
        odd = outlook_reply(answer, "Dobrze, oddzwonię wieczorem", f"Potwierdzam: {answer['Subject']}")
        code, said = await asyncio.to_thread(send_and_read_reply, gw.port, odd)
        assert code == 250 and "not sent" in said.lower(), said
        assert recorded(gw)[-1][1] == "out-of-office reply (by its subject)"
        await sink.wait(2)
        notice = parsed(sink.messages[1][2])
        assert notice["To"] == STAFF and "Potwierdzam" in str(notice["Subject"]), notice
        # A tag naming an automatic reply is not a classification tool's: the subject is no person's Reply.
        auto = outlook_reply(answer, "I am away until Monday", f"[Auto-Reply] RE: {answer['Subject']}")
        code, said = await asyncio.to_thread(send_and_read_reply, gw.port, auto)
        assert code == 250 and "not sent" in said.lower(), said
        assert len(core.records) == 1 + len(PERSON_PREFIXES)
