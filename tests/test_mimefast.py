"""The single-part parse shortcut builds exactly what the email package's feed parser builds: the same
headers, payload, defects and parts for every mail of the corpus (both line-end forms, as intake
normalises them) and for generated header blocks full of what the feed parser treats specially;
and read_mail's result for the whole corpus is the same with the shortcut as without it. Header
names in RFC 5322's obsolete form (`Precedence : bulk`) are read as names, which the feed parser
takes for the start of the body.
"""

from __future__ import annotations

import base64
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smtp import mimefast
from gateway.smtp.intake import IntakeRefused, read_mail
from tests.test_golden import CORPUS, to_crlf, wrap_body, wrap_tnef

_FEED = BytesParser(policy=compat32)


def corpus() -> list[tuple[str, bytes]]:
    cases = [(p.name, p.read_bytes()) for p in sorted(CORPUS.glob("*.eml"))]
    cases += [(p.name, wrap_body(p.read_bytes())) for p in sorted((CORPUS / "bodies").glob("*.txt"))]
    cases += [(p.name, wrap_tnef(p.read_bytes())) for p in sorted((CORPUS / "tnef").glob("*.tnef"))]
    cases += [(f"{name} (CRLF)", to_crlf(raw)) for name, raw in cases]
    return cases


CASES = corpus()
BENCH_MAIL = (
    b"From: bench@acme.example\r\nTo: +48600000001@sms.example.com\r\nSubject: Bench 1\r\n"
    b"Message-ID: <bench-1@acme.example>\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    b"Benchmark message number 1. The meeting is moved to 10:00, room 4.\r\n"
)


def shape(msg: Message) -> Any:
    """Everything a Message holds that intake (or anyone) can read back."""
    payload = msg._payload  # type: ignore[attr-defined]
    return (
        msg._headers,  # type: ignore[attr-defined]
        [shape(p) for p in payload] if isinstance(payload, list) else payload,
        [(type(d), str(d)) for d in msg.defects],
        msg.get_unixfrom(),
        msg.get_charset(),
        msg.preamble,
        msg.epilogue,
        msg.get_default_type(),
    )


_NAMES = ("subject", "Content-Type", "content-transfer-encoding", "FROM", "x-empty", "bad name", "missing")


def reads(msg: Message) -> Any:
    """What intake asks a parsed mail for: header values, the content type and its parameters."""
    return (
        [(name, msg.get(name), msg.get(name, "fail"), name in msg, msg.get_all(name)) for name in _NAMES],
        msg.get_content_type(),
        msg.get_content_maintype(),
        msg.get_content_charset(),
        msg.get_params(),
        msg.get_filename(),
        msg.is_multipart(),
    )


def feed(text: bytes) -> Message:
    """The feed parser's message, obsolete header names read first (`test_obsolete_header_names`)."""
    return _FEED.parsebytes(
        mimefast.obs_names(text.decode("ascii", "surrogateescape")).encode("ascii", "surrogateescape")
    )


def normalised(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").lstrip(b" \t\r\n")  # what intake hands the parser


def test_the_corpus_is_there() -> None:
    assert len(CASES) > 60


@pytest.mark.parametrize(("name", "raw"), [*CASES, ("bench", BENCH_MAIL)], ids=lambda v: str(v)[:60])
def test_same_message_as_the_feed_parser(name: str, raw: bytes) -> None:
    text = normalised(raw)
    assert shape(mimefast.parse(text)) == shape(feed(text))
    assert reads(mimefast.parse(text)) == reads(feed(text))


def test_the_shortcut_is_taken_for_plain_single_part_mail() -> None:
    assert mimefast._simple(normalised(BENCH_MAIL).decode("ascii")) is not None
    taken = [n for n, raw in CASES if mimefast._simple(normalised(raw).decode("ascii", "surrogateescape"))]
    assert len(taken) >= 10  # the corpus's single-part mails, wrapped bodies included


def _read(raw: bytes) -> Any:
    try:
        return read_mail(raw)
    except IntakeRefused as refused:
        return refused.reply


def test_read_mail_gives_the_same_result_without_the_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    raws = [raw for _name, raw in CASES] + [BENCH_MAIL]
    fast = [_read(raw) for raw in raws]
    monkeypatch.setattr(mimefast, "_simple", lambda _text: None)
    assert [_read(raw) for raw in raws] == fast


_LINE = st.one_of(
    st.sampled_from(
        [
            "Subject: hello",
            "Subject:",
            "Subject:  two  spaces ",
            "X-Empty:\t",
            " continued",
            "\tcontinued with tab",
            "From sender@example.com Mon Jan 1",
            "From: a@b",
            ":no name",
            "Bad Name: x",
            "Precedence : bulk",
            "Obs\t : tab",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Type: text/html",
            "Content-Type: multipart/mixed; boundary=x",
            "Content-Type: message/rfc822",
            "Content-Type: message/delivery-status",
            "content-transfer-encoding: base64",
            "Subject: with\rcarriage return",
            "Subject: form\x0cfeed",
            "Subject: 8bit \udcc5\udc82",
            "no colon at all",
            "",
            "--x",
        ]
    ),
    st.text(alphabet=st.sampled_from("Ab:- \t\r\x0b\x0c\x1cz;="), max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(head=st.lists(_LINE, max_size=8), body=st.text(alphabet="ab \n\r.-:", max_size=30))
def test_generated_header_blocks_parse_the_same(head: list[str], body: str) -> None:
    text = ("\n".join(head) + "\n\n" + body).encode("ascii", "surrogateescape")
    assert shape(mimefast.parse(text)) == shape(feed(text))
    assert reads(mimefast.parse(text)) == reads(feed(text))


def test_reads_follow_changes_to_the_headers() -> None:
    """The indexed message answers from what its headers are now, whichever way they changed."""
    text = normalised(BENCH_MAIL)
    fast, feed = mimefast.parse(text), _FEED.parsebytes(text)
    assert isinstance(fast, mimefast.IndexedMessage)
    changes = [
        lambda m: m.set_param("charset", "iso-8859-2"),
        lambda m: m.replace_header("Subject", "Changed"),
        lambda m: m.__delitem__("subject"),
        lambda m: m.add_header("Subject", "Added", name="x"),
        lambda m: m.__setitem__("X-New", "1"),
        lambda m: m.set_raw("Content-Disposition", "attachment; filename=a.txt"),
        lambda m: m.set_type("text/html"),
        lambda m: m.del_param("charset"),
        lambda m: m.__delitem__("content-type"),
        lambda m: m.set_default_type("message/rfc822"),
        lambda m: m.set_charset("utf-8"),
    ]
    for change in changes:
        assert reads(fast) == reads(feed)  # read first, so that a stale answer would show
        change(fast)
        change(feed)
        assert reads(fast) == reads(feed)
        assert shape(fast) == shape(feed)


def test_an_encoded_body_is_left_as_written() -> None:
    text = b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(b"hello")
    assert mimefast.parse(text).get_payload(decode=True) == b"hello"


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("Precedence : bulk\nSubject: x\n\nbody : y\n", "Precedence: bulk\nSubject: x\n\nbody : y\n"),
        ("From: a\nAuto-Submitted\t: auto-replied\n\nx", "From: a\nAuto-Submitted: auto-replied\n\nx"),
        ("A : 1\n  B : continued\nC :2\r\nD: 3\n\n", "A: 1\n  B : continued\nC:2\r\nD: 3\n\n"),
        # The header block ends where the feed parser ends it: nothing below is a header.
        ("From: a\nBad Name: x\nPrecedence : bulk\n\n", "From: a\nBad Name: x\nPrecedence : bulk\n\n"),
        ("From: a\n\nPrecedence : bulk\n", "From: a\n\nPrecedence : bulk\n"),
        ("Precedence : bulk", "Precedence: bulk"),
    ],
)
def test_obsolete_header_names(text: str, read: str) -> None:
    # RFC 5322 4.5.3: `field-name *WSP ":"`. The feed parser took such a line for the first of the
    # body: a responder's `Auto-Submitted : auto-replied` answer went out as an SMS.
    assert mimefast.obs_names(text) == read


@pytest.mark.parametrize(
    ("headers", "bulk", "automatic"),
    [
        ("Precedence : bulk\n", True, None),
        ("Auto-Submitted : auto-replied\n", False, "Auto-Submitted: auto-replied"),
        ("Precedence: normal\nPrecedence: bulk\n", True, None),
        ("X-Precedence: normal\nPrecedence: BULK\n", True, None),
        ("Precedence: normal\nPrecedence: list\n", True, None),
        ("Precedence: normal\n", False, None),
    ],
)
def test_how_a_mail_is_read_from_such_headers(headers: str, bulk: bool, automatic: str | None) -> None:
    raw = f"From: a@acme.example\r\nSubject: Hi\r\n{headers}\r\nSee you\r\n".replace("\n", "\r\n")
    mail = read_mail(raw.replace("\r\r", "\r").encode())
    assert (mail.bulk, mail.automatic, mail.text) == (bulk, automatic, "Hi: See you")
