"""Header shapes that cost seconds of CPU within the size limit are refused before the parse.

A header block of 130,000 fields, a Content-Type of 100,000 parameters and a Subject of 75,000
encoded words each held an intake worker for a quarter of a second to seconds a MB
(`bench/mime_shapes.py`). Past bounds no mail client comes near (1000 fields in a header block,
100 parameters, 1000 encoded words in a field) such a mail is refused `554 5.6.0` naming which,
on the relay port and on the submission port after AUTH, and nothing of it is stored; a mail at
each bound is read and taken. A real smtplib client talks to the running gateway on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path
from typing import Any

import pytest

from gateway.smtp import headerbound, mimebound
from gateway.smtp.headerbound import MAX_FIELDS, MAX_PARAMS, MAX_WORDS
from gateway.smtp.intake import IntakeRefused, read_mail
from tests.certs import make_cert_pair
from tests.conftest import (
    DOMAIN,
    STAFF,
    free_port,
    mail,
    make_config,
    running_gateway,
    send_blocking,
    smtp_sink,
)
from tests.fakes.smsc import HappySMSC
from tests.test_intake_poison import parts_mail
from tests.test_intake_workers import log_events, stop, worker_config
from tests.test_process import start_daemon
from tests.test_spec_smtp_postmaster import ADMIN
from tests.test_spec_smtp_postmaster import config as postmaster_config
from tests.test_submission import PASSWORD, secure, submission_config, with_password

PHONE = f"601123456@{DOMAIN}"
HEAD = f"From: {STAFF}\r\nTo: {PHONE}\r\n"  # two fields


def fields(n: int) -> bytes:
    """A mail whose header block has `n` fields."""
    return (HEAD + "Subject: Many fields\r\n" + "X-A: 1\r\n" * (n - 3) + "\r\nText\r\n").encode()


def params(n: int, field: str = "Content-Type: text/plain; charset=utf-8") -> bytes:
    """A mail whose Content-Type has `n` parameters."""
    return (HEAD + "Subject: Many parameters\r\n" + field + ";a=1" * (n - 1) + "\r\n\r\nText\r\n").encode()


def words(n: int, fold: str = " ") -> bytes:
    """A mail whose Subject is `n` encoded words (adjacent: they are one text, "aaa…")."""
    return (HEAD + "Subject: " + fold.join(["=?utf-8?q?a?="] * n) + "\r\n\r\nText\r\n").encode()


def part_fields(n: int) -> bytes:
    """A multipart mail whose text part has `n` header fields."""
    part = "--B\r\nContent-Type: text/plain\r\n" + "X-A: 1\r\n" * (n - 1) + "\r\nText\r\n--B--\r\n"
    return (HEAD + "Subject: Part\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" + part).encode()


def enclosed_fields(n: int) -> bytes:
    """A mail that is a message/rfc822 whose enclosed message has `n` header fields."""
    inner = "From: b@example.com\r\n" + "X-A: 1\r\n" * (n - 1) + "\r\nInner text\r\n"
    return (HEAD + "Subject: Fwd\r\nContent-Type: message/rfc822\r\n\r\n" + inner).encode()


def disposition(n: int) -> bytes:
    """A multipart mail whose attachment's Content-Disposition has `n` parameters."""
    attached = "--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment"
    attached += ";a=1" * n + "\r\n\r\nJVBERi0=\r\n--B--\r\n"
    text = "--B\r\nContent-Type: text/plain\r\n\r\nText\r\n"
    return (
        HEAD + "Subject: Att\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" + text + attached
    ).encode()


SHAPES = {
    "fields": (fields, MAX_FIELDS, headerbound.TOO_MANY_FIELDS),
    "fields-lone-cr": (lambda n: fields(n).replace(b"\r\n", b"\r"), MAX_FIELDS, headerbound.TOO_MANY_FIELDS),
    "part-fields": (part_fields, MAX_FIELDS, headerbound.TOO_MANY_FIELDS),
    "part-fields-lone-cr": (
        lambda n: part_fields(n).replace(b"\r\n", b"\r"),
        MAX_FIELDS,
        headerbound.TOO_MANY_FIELDS,
    ),
    "enclosed-fields": (enclosed_fields, MAX_FIELDS, headerbound.TOO_MANY_FIELDS),
    # `mimebound`'s bound, which saw no delimiter line after a lone CR: 26,000 parts so ended were parsed
    "parts-lone-cr": (
        lambda n: parts_mail(n).replace(b"\r\n", b"\r"),
        mimebound.MAX_PARTS,
        mimebound.TOO_MANY_PARTS,
    ),
    "params": (params, MAX_PARAMS, headerbound.TOO_MANY_PARAMS),
    "disposition": (disposition, MAX_PARAMS, headerbound.TOO_MANY_PARAMS),
    "words": (words, MAX_WORDS, headerbound.TOO_MANY_WORDS),
    "folded-words": (lambda n: words(n, "\r\n "), MAX_WORDS, headerbound.TOO_MANY_WORDS),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_one_past_a_bound_is_refused_naming_it_and_a_mail_at_it_is_read(shape: str) -> None:
    build, bound, reply = SHAPES[shape]
    with pytest.raises(IntakeRefused) as refused:
        read_mail(build(bound + 1))
    assert refused.value.reply == reply
    assert read_mail(build(bound)).text  # at the bound: read as any mail


HOSTILE = [(fields, MAX_FIELDS), (params, MAX_PARAMS), (words, MAX_WORDS)]
LEAD = "554 5.6.0 Message could not be read: more than "
REFUSALS = [
    LEAD + "1000 fields in one header",
    LEAD + "100 parameters in a Content-Type or Content-Disposition",
    LEAD + "1000 encoded words (=?...?=) in one header field",
]
# A monitoring mail with its log attached, 5000 "Host: …" lines with ";" and "=?": text, not fields.
REPORT = (
    HEAD
    + "Subject: Report\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
    + "--B\r\nContent-Type: text/plain\r\n\r\nDisk full\r\n"
    + "--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=log.txt\r\n\r\n"
    + "Host: srv; state=?down\r\n" * 5000
    + "--B--\r\n"
).encode()


def count(gw: Any, table: str) -> int:
    return int(gw.store.db.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def said(result: Any) -> str:
    assert isinstance(result.error, smtplib.SMTPDataError), result
    return f"{result.error.smtp_code} {result.error.smtp_error.decode()}"


async def test_the_relay_port_refuses_each_shape_and_stores_nothing_and_takes_one_at_the_bound(
    tmp_path: Path,
) -> None:
    async with running_gateway(make_config(tmp_path, smsc_port=1)) as gw:
        for (build, bound), reply in zip(HOSTILE, REFUSALS, strict=True):
            refused = await asyncio.to_thread(send_blocking, gw.port, build(bound + 1), [PHONE])
            assert said(refused) == reply
        assert (count(gw, "emails"), count(gw, "messages")) == (0, 0)
        for raw in [*(build(bound) for build, bound in HOSTILE), REPORT]:
            taken = await asyncio.to_thread(send_blocking, gw.port, raw, [PHONE])
            assert taken.error is None and not taken.refused, taken
        assert count(gw, "emails") == 4


async def test_the_submission_port_after_auth_refuses_each_shape(tmp_path: Path) -> None:
    tls = make_cert_pair(tmp_path / "tls")
    async with running_gateway(submission_config(tmp_path, 1, tls)) as gw:
        await with_password(gw)

        def session() -> list[str]:
            answers = []
            with secure(gw.daemon.submission_port, tls) as c:
                c.login(STAFF, PASSWORD)
                for build, bound in HOSTILE:
                    for raw in (build(bound + 1), build(bound)):
                        c.mail(STAFF)
                        c.rcpt(PHONE)
                        code, text = c.data(raw)
                        answers.append(f"{code} {text.decode()}")
            return answers

        answers = await asyncio.wait_for(asyncio.to_thread(session), 60)
        assert answers[0::2] == REFUSALS
        assert all(a.startswith("250 ") for a in answers[1::2]), answers
        assert (count(gw, "emails"), count(gw, "messages")) == (3, 3)


async def test_a_shape_to_postmaster_is_forwarded_for_a_person_and_its_text_not_read(tmp_path: Path) -> None:
    # Postmaster must reach a person (RFC 5321 4.5.1): the mail is forwarded whole, as an unreadable
    # one is; only the text the gateway would read from it is skipped, past the bound unparsed.
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(postmaster_config(tmp_path, relay)) as gw:
        raw = fields(MAX_FIELDS + 1).replace(PHONE.encode(), f"postmaster@{DOMAIN}".encode())
        result = await asyncio.to_thread(send_blocking, gw.port, raw, [f"postmaster@{DOMAIN}"])
        assert result.error is None and not result.refused, result
        await sink.wait(1)
        assert gw.store.db.conn.execute("SELECT text FROM emails").fetchall() == [("",)]
    [(_, rcpts, content)] = sink.messages
    assert rcpts == [ADMIN] and content.count(b"X-A: 1") == MAX_FIELDS - 2


async def test_an_intake_worker_process_refuses_a_shape_at_the_size_limit_and_goes_on(tmp_path: Path) -> None:
    # The relay port's worker processes, as shipped: each shape at 1 MiB is refused, and the worker
    # is not killed or stalled for the next mail, which reaches the SMSC.
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        proc = await start_daemon(worker_config(tmp_path, smsc.port, smtp_port, 1), smtp_port)
        try:
            # Each shape about 1 MB, under the shipped size limit (1 MiB).
            shapes = [fields(1_000_000 // 8), params(1_000_000 // 4), words(1_000_000 // 14)]
            for raw, reply in zip(shapes, REFUSALS, strict=True):
                assert len(raw) <= 1_048_576
                refused = await asyncio.to_thread(send_blocking, smtp_port, raw, [PHONE])
                assert said(refused) == reply
            assert len(log_events(tmp_path, "intake.header_refused")) == 3
            taken = await asyncio.to_thread(send_blocking, smtp_port, mail(PHONE, "After them"), [PHONE])
            assert taken.error is None and not taken.refused, taken
            await smsc.wait_for(1, timeout=20)
            assert not log_events(tmp_path, "worker.crashed")
        finally:
            await stop(proc)


def test_a_postmaster_forward_does_not_parse_a_shape_past_the_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    # The forward's own header parse held the loop 0.29 s a MiB (3.2 s at 10 MB) for a shape a
    # stranger may send to postmaster@: past the bounds, its headers are not parsed at all.
    from email.parser import BytesParser

    from gateway.smtp import postmaster

    parsed: list[int] = []
    original = BytesParser.parsebytes

    def counted(self: Any, text: bytes, headersonly: bool = False) -> Any:
        parsed.append(len(text))
        return original(self, text, headersonly)

    monkeypatch.setattr(BytesParser, "parsebytes", counted)
    cfg = make_config(Path("/nonexistent"), smsc_port=2775)
    sender = type("Sender", (), {"mail_from": "x@example.org", "account": None, "user": None})()
    envelope = type("Envelope", (), {})()
    envelope.__dict__["postmaster"] = f"postmaster@{DOMAIN}"
    raw = fields(MAX_FIELDS + 1).replace(PHONE.encode(), f"postmaster@{DOMAIN}".encode())
    record, [notice] = postmaster.forward(cfg, envelope, sender, raw, "192.0.2.7")  # type: ignore[arg-type]
    assert parsed == [] and record.text == "" and record.subject is not None
    assert b"X-A: 1" in notice.content


async def test_a_shape_to_info_is_refused_without_a_second_parse(tmp_path: Path) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        raw = fields(MAX_FIELDS + 1).replace(PHONE.encode(), f"info@{DOMAIN}".encode())
        result = await asyncio.to_thread(send_blocking, gw.port, raw, [f"info@{DOMAIN}"])
        assert isinstance(result.error, smtplib.SMTPDataError) and result.error.smtp_code == 554, result
        assert headerbound.TOO_MANY_FIELDS.split(" ", 2)[2].encode() in result.error.smtp_error
