"""A person's mail under an out-of-office word, or a Reply under a tag, is never dropped silently (R-1.7).

Outlook puts `X-Auto-Response-Suppress` on ordinary mails too. A staff member's new mail titled
"Nieobecność: Jan Kowalski 14-18.12, zastępuje Anna 601 222 333" (or "Poza biurem: …", "Out of office:
…") carried it, and was recorded as an out-of-office reply: no SMS, and no word to its writer, whose
mail server saw only the 250. Beside such a title the header is a guess its writer hears of; a real
responder's reply says more (Exchange's "Mailbox Rules Agent", Auto-Submitted, an empty envelope
sender) or is the responder's own template ("Odpowiedź automatyczna: …"), and stays silent.

A person's Reply to an answer mail under a tag a filter or the relay put first ("[Automotive] RE:",
"[Urlopy] RE:", "(External) RE:", "EXTERNAL: RE:", "[EXT] RE:") was taken for an out-of-office reply
and not sent (its writer told): the tag rule skipped only "[…]" tags, and none holding "auto" or
"urlop" anywhere. A tag counts as a person's unless it names an automatic reply. A bare "auto",
"away" or "urlop" names one only as the tag's first word: "[Komis Auto] RE:" (a car dealer's) was taken
for an automatic reply once the words were looked for anywhere in a tag.

Real peers: a real SMTP client into the running daemon, its built-in SMPP simulator, the notices and
answer mails caught by a real SMTP sink.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path

from gateway.smtp.intake import read_mail
from tests.conftest import STAFF, mail
from tests.test_oof_to_answers import (
    PHONE_ADDRESS,
    answered,
    outlook_reply,
    parsed,
    recorded,
    send_and_read_reply,
    still_sent,
)

TITLES = [
    "Nieobecność: Jan Kowalski 14-18.12, zastępuje Anna 601 222 333",
    "Poza biurem: spotkanie u klienta, dzwonić 601 222 333",
    "Out of office: server room tomorrow 8:00",
]


def outlook_new(subject: str, body: str, **extra: str) -> EmailMessage:
    """A new mail from Outlook: its `X-Auto-Response-Suppress` and Outlook's own headers, no thread."""
    msg = mail(PHONE_ADDRESS, body=body, subject=subject, Thread_Index="AQHZabcdefghijkl", **extra)
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-MS-Has-Attach"] = ""
    msg["X-MS-TNEF-Correlator"] = ""
    return msg


async def test_a_persons_out_of_office_title_is_told_a_responders_reply_is_recorded(tmp_path: Path) -> None:
    async with answered(tmp_path) as (gw, sink, _answer):
        core = gw.daemon.simulator.core
        for subject in TITLES:
            msg = outlook_new(subject, "W razie pilnych spraw dzwońcie do Anny: 601 222 333.")
            code, said = await asyncio.to_thread(send_and_read_reply, gw.port, msg)
            assert code == 250 and "not sent" in said.lower(), (subject, said)
        await sink.wait(1 + len(TITLES))  # the answer mail, then a notice for each title
        told = [parsed(raw) for _, _, raw in sink.messages[1:]]
        assert sorted((str(n["To"]), str(n["Subject"])) for n in told) == sorted(
            (STAFF, f"Not sent as SMS: {subject}") for subject in TITLES
        )  # queued one by one, sent in any order
        assert [why for _, why in recorded(gw)[1:]] == ["out-of-office reply (by its subject)"] * len(TITLES)
        # Exchange's own reply under the same title: its mailbox rules' marks, or its template's words.
        exchange = outlook_new(TITLES[0], "Jestem nieobecny do 18.12.")
        exchange["X-MS-Exchange-Generated-Message-Source"] = "Mailbox Rules Agent"
        exchange["X-MS-Exchange-Parent-Message-Id"] = "<m1@acme.example>"
        template = outlook_new("Odpowiedź automatyczna: Oferta", "Jestem na urlopie do 18.12.")
        for msg in (exchange, template):
            code, said = await asyncio.to_thread(send_and_read_reply, gw.port, msg)
            assert code == 250 and "out-of-office reply" in said, said
        await still_sent(core, 1)
        assert [why for _, why in recorded(gw)[-2:]] == ["out-of-office reply"] * 2
        assert len(sink.messages) == 1 + len(TITLES)  # recorded only: no notice to a responder


def test_a_responders_reply_with_an_empty_envelope_sender_stays_one() -> None:
    # Exchange sends its out-of-office replies with MAIL FROM:<>; such a one is no guess.
    raw = outlook_new(TITLES[2], "I am away.").as_bytes()
    from_null = read_mail(raw, empty_sender=True).automatic
    assert from_null == "out-of-office reply; bounce (empty envelope sender)"
    assert read_mail(raw).automatic == "out-of-office reply (by its subject)"


TAGGED = [
    *("[Automotive] RE", "[Urlopy] RE", "(External) RE", "EXTERNAL: RE", "[EXT] RE", "*EXTERNAL* RE"),
    *("[Komis Auto] RE", "[Moto-Auto] RE", "[Take-away] RE"),  # a bare word past a tag's start
]
# Tags naming an automatic reply: as their first words, or after a helpdesk tool's name (its automatic
# acknowledgement of the answer mail, with Outlook's header and In-Reply-To the answer's id).
AUTO_TAGS = [
    "[Urlop] RE",
    "(Auto-Reply) RE",
    "*Out of Office* RE",
    "[Service Desk Auto-Reply] RE",
    "[Ticket auto-response] RE",
    "[Helpdesk: automatic reply] RE",
]


async def test_a_persons_reply_under_a_tag_reaches_the_phone(tmp_path: Path) -> None:
    async with answered(tmp_path) as (gw, sink, answer):
        core = gw.daemon.simulator.core
        for n, prefix in enumerate(TAGGED, start=1):
            reply = outlook_reply(answer, f"Dobrze, oddzwonię o {n}", f"{prefix}: {answer['Subject']}")
            code, said = await asyncio.to_thread(send_and_read_reply, gw.port, reply)
            assert code == 250 and "not sent" not in said.lower(), (prefix, said)
            await gw.until(lambda n=n: len(core.records) == n + 1)
            assert f"oddzwonię o {n}" in str(core.records[n]["text"]), prefix
        # A tag naming an automatic reply is still no person's Reply: recorded, its writer told.
        for tag in AUTO_TAGS:
            auto = outlook_reply(answer, "I am away until Monday", f"{tag}: {answer['Subject']}")
            code, said = await asyncio.to_thread(send_and_read_reply, gw.port, auto)
            assert code == 250 and "not sent" in said.lower(), (tag, said)
        await still_sent(core, 1 + len(TAGGED))
        assert len(sink.messages) == 1 + len(AUTO_TAGS)


def test_a_tag_naming_an_automatic_reply_is_one_a_bare_word_past_its_start_or_inside_another_is_not() -> None:
    def reason(subject: str) -> str | None:
        msg = outlook_new(subject, "Thank you, your request was received.")
        msg["In-Reply-To"] = "<abc.sms-reply@sms.example.com>"
        return read_mail(msg.as_bytes()).automatic

    for prefix in AUTO_TAGS:
        assert reason(f"{prefix}: SMS from +48601123456") == "out-of-office reply (by its subject)", prefix
    for prefix in (*TAGGED, "[Service Desk] RE", "[Autoryzowane] RE", "[EXT] [Urlopy] RE"):
        assert reason(f"{prefix}: SMS from +48601123456") is None, prefix
