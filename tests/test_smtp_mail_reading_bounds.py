"""Over real SMTP: what one mail may cost the intake and what it says of the mail it cannot send.

- The HTML parts of one mail share one budget of conversions: 999 inline parts of tables (1 MB)
  held the event loop for 5.5 s (twenty at once an intake worker past its heartbeat), to a phone
  and to postmaster alike; the text sent from ordinary mail (the corpus) is what it was.
- HTML nested past libxml2's 256 elements kept its text (90 nested tables sent the subject alone).
- A binary file piped as a text/plain body is an attachment, not six UCS-2 parts of noise.
- abuse@ (RFC 2142) is taken as postmaster@ is, from anyone, and forwarded to the admin.
- HELP names EHLO and DATA; a mail over the size limit hears the limit (decimal, rounded down) and
  that an SMS carries only text.

What these bounds must not cost (text with a few control characters, UTF-16 and UTF-32, a forward's
enclosed text, near-empty parts, the truth of the notes and refusals) is held by
tests/test_smtp_mail_reading_not_lost.py: the corpus test here cannot catch it (the corpus has no
such mail, and the binary test is not lifted with the budget).
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path
from typing import Any

import pytest

from gateway.configgateway import MAX_PARTS
from gateway.smtp import mimebody, replies
from gateway.smtp.intake import IntakeRefused, read_mail
from gateway.smtp.postmaster import PER_CLIENT_PER_HOUR
from gateway.wording import label_words
from tests.conftest import DOMAIN, STAFF, free_port, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_golden import CASES
from tests.test_spec_smtp_postmaster import ADMIN, STRANGER, config, forwards, open_text, talk

PHONE = f"601123456@{DOMAIN}"
CONVERSIONS_MAX = 100  # HTML parts converted in one mail at most, however many it has
TABLES = b"<html><body>" + b"<table><tr><td>a</td></tr></table>" * 26 + b"</body></html>"  # ~900 B


def many_html_parts(sender: str, rcpt: str, parts: int = 999) -> bytes:
    head = (
        f"From: {sender}\r\nTo: {rcpt}\r\nSubject: heavy\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=B\r\n\r\n"
    ).encode()
    part = b"--B\r\nContent-Type: text/html\r\n\r\n" + TABLES + b"\r\n"
    return head + part * parts + b"--B--\r\n"


def simple(subject: str, content_type: str, body: bytes) -> bytes:
    subject_line = f"Subject: {subject}\r\n" if subject else ""
    return (
        f"From: {STAFF}\r\nTo: {PHONE}\r\n{subject_line}MIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode() + body


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The HTML parts converted (`html_to_text` as the MIME walk calls it), counted, not timed."""
    calls = [0]
    convert = mimebody.html_to_text

    def counted(markup: str, notes: list[str]) -> str:
        calls[0] += 1
        return convert(markup, notes)

    monkeypatch.setattr(mimebody, "html_to_text", counted)
    return calls


def sent(gw: Any) -> list[str]:
    return [str(r[0]) for r in gw.store.db.conn.execute("SELECT text FROM messages ORDER BY id")]


def removed(gw: Any) -> list[str | None]:
    return [r[0] for r in gw.store.db.conn.execute("SELECT removed FROM emails ORDER BY id")]


async def test_a_mail_of_999_html_parts_converts_a_bounded_number_of_them(
    tmp_path: Path, conversions: list[int]
) -> None:
    raw = many_html_parts(STAFF, PHONE)
    assert len(raw) < 1_048_576  # under the default size limit: read, not refused for its size
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(raw, [PHONE])
        texts, notes = sent(gw), removed(gw)
    assert res.error is None and not res.refused, res
    assert conversions[0] <= CONVERSIONS_MAX
    assert mimebody._HTML_PARTS_MAX == CONVERSIONS_MAX
    assert len(texts) == 1 and texts[0].startswith("heavy: a")  # the SMS is cut as a long text is
    assert notes[0] is not None and mimebody.html_not_read(conversions[0]) in notes[0]


async def test_a_strangers_mail_of_999_html_parts_to_postmaster_too(
    tmp_path: Path, conversions: list[int]
) -> None:
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(open_text(tmp_path, relay)) as gw:
        said = await talk(
            gw.port, ["postmaster"], many_html_parts(STRANGER, "postmaster"), "127.0.0.2", STRANGER
        )
        await sink.wait(1)
        taken = forwards(gw)
    assert said[0] == [replies.OK_RCPT] and said[1] is not None and said[1].startswith("250"), said
    assert len(taken) == 1 and sink.messages[0][1] == [ADMIN]
    assert conversions[0] <= CONVERSIONS_MAX


def test_the_text_of_many_long_html_parts_begins_as_it_did(monkeypatch: pytest.MonkeyPatch) -> None:
    # Parts of text past the budget: what an SMS holds of the text is what the whole mail gave.
    paragraph = b"<p>" + b"Raport dzienny, pozycja numer %d: wszystko w porzadku. " * 8 + b"</p>"
    parts = b"".join(
        b"--B\r\nContent-Type: text/html\r\n\r\n<html><body>"
        + paragraph.replace(b"%d", b"%03d" % i)
        + b"</body></html>\r\n"
        for i in range(60)
    )
    raw = simple("", "multipart/mixed; boundary=B", parts + b"--B--\r\n")
    bounded = read_mail(raw)
    monkeypatch.setattr(mimebody, "_HTML_SHOWN_MAX", 10**9)
    whole = read_mail(raw)
    shown = MAX_PARTS * 153
    assert len(whole.text) > len(bounded.text) > shown
    assert bounded.text[:shown] == whole.text[:shown]
    assert any(note.startswith("HTML parts past the first") for note in bounded.removed)


def _outcome(raw: bytes) -> tuple[str, ...]:
    try:
        mail = read_mail(raw)
    except IntakeRefused as refused:
        return ("refused", refused.reply)
    return (mail.text, mail.automatic or "", *mail.removed)


def test_the_corpus_reads_as_it_did_without_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(CASES) >= 50
    bounded = {name: _outcome(raw) for name, raw, _ in CASES}
    for name in ("_HTML_SHOWN_MAX", "_HTML_READ_MAX", "_HTML_PARTS_MAX"):
        monkeypatch.setattr(mimebody, name, 10**9)
    assert {name: _outcome(raw) for name, raw, _ in CASES} == bounded


@pytest.mark.parametrize("depth", [90, 700])  # three elements a level: past 256, and past 2,048
async def test_deeply_nested_html_keeps_its_text(tmp_path: Path, depth: int) -> None:
    markup = b"<html><body>" + b"<table><tr><td>" * depth + b"Klient czeka w recepcji"
    markup += b"</td></tr></table>" * depth + b"</body></html>"
    raw = simple("Recepcja", "text/html; charset=utf-8", markup)
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(raw, [PHONE])
        texts = sent(gw)
    assert res.error is None and not res.refused, res
    assert len(texts) == 1 and " ".join(texts[0].split()) == "Recepcja: Klient czeka w recepcji", texts


BINARY = bytes(range(256)) * 2  # `cat report.bin | mailx -s report.bin`


async def test_a_binary_text_plain_body_is_an_attachment_not_sent(tmp_path: Path) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        with_subject = await gw.send(simple("report.bin", "text/plain", BINARY), [PHONE])
        alone = await gw.send(simple("", "text/plain", BINARY), [PHONE])
        texts, notes = sent(gw), removed(gw)
    assert with_subject.error is None and not with_subject.refused, with_subject
    assert texts == ["report.bin"]  # the subject is the message, as beside any attachment
    assert notes[0] is not None and "attachments not sent (1)" in notes[0]
    assert isinstance(alone.error, smtplib.SMTPDataError)
    assert alone.error.smtp_code == 554 and alone.error.smtp_error.decode() == replies.ONLY_ATTACHMENTS[4:]


def test_text_with_a_scripts_colours_is_still_text() -> None:
    log = b"".join(b"\x1b[32mOK\x1b[0m backup of /srv/data %d finished\n" % i for i in range(20))
    mail = read_mail(simple("cron", "text/plain", log))
    assert "backup of /srv/data 19 finished" in mail.text


@pytest.mark.parametrize("source, sender", [("127.0.0.2", STRANGER), ("127.0.0.1", STAFF)])
async def test_abuse_is_taken_as_postmaster_is(tmp_path: Path, source: str, sender: str) -> None:
    relay = free_port()
    raw = (
        f"From: {sender}\r\nTo: abuse@{DOMAIN}\r\nSubject: SMS spam from your gateway\r\n\r\n"
        "I keep getting SMS from your gateway.\r\n"
    ).encode()
    async with smtp_sink(relay) as sink, running_gateway(open_text(tmp_path, relay)) as gw:
        said = await talk(gw.port, [f"abuse@{DOMAIN}"], raw, source, sender)
        await sink.wait(1)
        messages = gw.store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert said[0] == [replies.OK_RCPT] and said[1] is not None and said[1].startswith("250"), said
    assert sink.messages[0][0] == "<>" and sink.messages[0][1] == [ADMIN]
    assert f"abuse@{DOMAIN}".encode() in sink.messages[0][2] and messages == 0
    # Named as the mail to abuse it is (the caps it shares with postmaster's count it as theirs).
    assert said[1] == replies.OK_NOT_SENT.format(
        f"mail to abuse@{DOMAIN}, forwarded to the gateway's administrator"
    ), said
    forward = sink.messages[0][2].decode()
    assert "Mail to abuse received" in " ".join(forward.split()) and "postmaster" not in forward.lower()


async def test_abuse_is_named_in_its_refusals_not_called_postmaster(tmp_path: Path) -> None:
    # Past the hour's cap an abuse@ sender read "<abuse@…>: too much mail to postmaster", and beside
    # other recipients "A mail to postmaster goes in a mail of its own".
    abuse, relay = f"abuse@{DOMAIN}", free_port()
    raw = f"From: {STRANGER}\r\nTo: {abuse}\r\nSubject: spam\r\n\r\nSMS spam again.\r\n".encode()
    async with smtp_sink(relay), running_gateway(open_text(tmp_path, relay)) as gw:
        taken = [await talk(gw.port, [abuse], raw, "127.0.0.2", STRANGER) for _ in range(PER_CLIENT_PER_HOUR)]
        capped = await talk(gw.port, [abuse], raw, "127.0.0.2", STRANGER)
        first = await talk(gw.port, [abuse, PHONE])  # from the customer's network: not capped
        after = await talk(gw.port, [PHONE, abuse])
        postmaster_first = await talk(gw.port, [f"postmaster@{DOMAIN}", PHONE])
    assert all(data is not None and data.startswith("250") for _, data in taken), taken
    busy = f"451 4.7.1 <{abuse}>: too much mail to abuse from your address in the last hour"
    assert capped == ([f"{busy}, please try again later"], None), capped
    alone = "452 4.5.3 A mail to abuse goes in a mail of its own"
    assert first[0] == [replies.OK_RCPT, alone] and after[0] == [replies.OK_RCPT, alone], (first, after)
    assert postmaster_first[0][1] == "452 4.5.3 A mail to postmaster goes in a mail of its own"


def _help(port: int) -> list[str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("client.test")
        return [
            f"{code} {text.decode()}" for code, text in (c.docmd("HELP", arg) for arg in ("", "EHLO", "DATA"))
        ]


async def test_help_names_ehlo_and_data(tmp_path: Path) -> None:
    relay = free_port()
    async with running_gateway(config(tmp_path, relay)) as gw:
        listed, ehlo, data = await asyncio.to_thread(_help, gw.port)
    assert listed.startswith("250 2.0.0 Supported commands: ")
    assert {"EHLO", "DATA", "HELO", "MAIL", "RCPT"} <= set(listed.split()[4:]), listed
    assert ehlo == "250 2.0.0 Syntax: EHLO hostname" and data == "250 2.0.0 Syntax: DATA"


def _over_the_limit(port: int, size: int) -> tuple[str, str]:
    """MAIL's reply to SIZE= over the limit, and DATA's to a body over it sent without SIZE=."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("client.test")
        code, text = c.docmd("MAIL", f"FROM:<{STAFF}> SIZE={size}")
        at_mail = f"{code} {text.decode()}"
        assert c.docmd("MAIL", f"FROM:<{STAFF}>")[0] == 250 and c.rcpt(PHONE)[0] == 250
        assert c.docmd("DATA")[0] == 354
        c.send(b"Subject: faktura\r\n\r\n" + (b"y" * 998 + b"\r\n") * (size // 1000) + b".\r\n")
        code, text = c.getreply()
        return at_mail, f"{code} {text.decode()}"


async def test_a_mail_over_the_size_limit_hears_the_limit_and_why(tmp_path: Path) -> None:
    relay = free_port()
    async with running_gateway(config(tmp_path, relay)) as gw:
        assert gw.config.smtp.max_message_bytes == 1_048_576
        at_mail, at_data = await asyncio.to_thread(_over_the_limit, gw.port, 2_000_000)
    expected = (
        "552 5.3.4 Mail over 1 MB refused: an SMS carries only text (attachments are not sent);"
        " send a shorter mail"
    )
    assert at_mail == expected and at_data == expected
    assert replies.too_big(1_048_576) == expected


@pytest.mark.parametrize(
    "limit, said",
    [
        (1_048_576, "1 MB"),
        (1_000_000, "1 MB"),
        (1_500_000, "1.5 MB"),
        (1_530_000, "1.5 MB"),
        (512_000, "512 KB"),
    ],
)
def test_the_size_limit_is_said_in_decimal_units_rounded_down(limit: int, said: str) -> None:
    # 1,530,000 was "1.5 MB" of 1,048,576 bytes (1.46 rounded up: a mail of 1,550,000 bytes, under
    # what was said, was refused), and 1,000,000 "976.6 KB".
    assert replies.too_big(limit).startswith(f"552 5.3.4 Mail over {said} refused: ")


def test_the_html_skip_note_in_polish() -> None:
    assert label_words(mimebody.html_not_read(1), "pl") == "nie odczytano części HTML po pierwszej"
    assert label_words(mimebody.html_not_read(100), "pl") == "nie odczytano części HTML po pierwszych 100"
    assert mimebody.html_not_read(1) == "HTML parts after the first not read"
