"""What the gateway's own mails say and how they are encoded: the bounce of a failed SMS names the
mail it bounces by its Subject, and notices with Polish text are quoted-printable (7-bit), as the
answers are, so that a relay without 8BITMIME has nothing to convert.
"""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from tests.conftest import DOMAIN, STAFF, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_premium import CLIENT, World

SUBJECT = "Spotkanie przełożone na 10:00 — sala 3"
POLISH = "Zażółć gęślą jaźń, spotkanie w sali numer trzy o dziesiątej, proszę o potwierdzenie obecności"
ANSWER = "Dziękujemy za głos, wyniki ogłosimy w piątek o 18:00 w audycji porannej. Zapraszamy do udziału!"


async def test_a_failed_sms_bounce_names_the_original_subject_in_its_header_part(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HappySMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            sent = mail(f"601123413@{DOMAIN}", "This one fails", SUBJECT, Message_ID="<fail-7@acme.example>")
            await gw.send(sent)
            await sink.wait(1)
    content = sink.messages[0][2]
    assert content.isascii()  # the Polish subject is an encoded word: the report stays 7-bit
    report = email.message_from_bytes(content, policy=policy.default)
    (part,) = [p for p in report.walk() if p.get_content_type() == "text/rfc822-headers"]
    original = email.message_from_string(part.get_content(), policy=policy.default)
    assert original["Subject"] == SUBJECT
    assert original["Message-ID"] == "<fail-7@acme.example>" and original["From"] == STAFF
    # No Original-Recipient: that is the ORCPT of an SMTP DSN request (RFC 3461), which is not offered.
    assert b"Original-Recipient" not in content


async def test_a_shortened_premium_answer_notice_is_quoted_printable(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    # UCS-2: one SMS holds 70 characters, the rest is cut. Lines short enough for 8bit, which the
    # email package picks for them unless told otherwise.
    assert w.answer(ANSWER)[1]
    ((content,),) = w.store.db.conn.execute(
        "SELECT content FROM outbox WHERE kind = 'premium-cut'"
    ).fetchall()
    assert content.isascii()
    notice = email.message_from_bytes(content, policy=policy.default)
    assert notice["To"] == CLIENT and notice["Content-Transfer-Encoding"] == "quoted-printable"
    text = " ".join(notice.get_content().split())
    cut = ANSWER.rindex(" ", 0, 70) + 1  # the SMS ends at its last word
    assert ANSWER[:cut] in text and ANSWER[cut:] in text


async def test_a_notice_with_polish_text_reaches_the_relay_quoted_printable(tmp_path: Path) -> None:
    # through the running gateway: the text cut off is quoted in the notice.
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port, max_parts=1)
        async with running_gateway(cfg) as gw:
            await gw.send(mail(f"601123456@{DOMAIN}", POLISH, "Zebranie"))
            await sink.wait(1)
    ((_from, rcpts, content),) = sink.messages
    assert rcpts == [STAFF] and content.isascii()
    notice = email.message_from_bytes(content, policy=policy.default)
    assert notice["Content-Transfer-Encoding"] == "quoted-printable"
    assert POLISH[-30:] in " ".join(notice.get_content().split())
