"""`first_headers` of a mail the single-part shortcut parsed is read from the message's index of its
fields (`IndexedMessage.first_fields`), not from a pass of its own over them: the same names, first
raw values and order as that pass gives, for the corpus, generated header blocks, undecodable bytes,
names repeated in other cases, and after each way a header can change; and a dict of the caller's own."""

from __future__ import annotations

from email.message import Message
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smtp import mimefast
from tests.test_golden import CORPUS
from tests.test_mimefast_split import _LINES


def by_a_pass(msg: Message) -> list[tuple[str, Any]]:
    """The first raw value of each lowered name, as a pass over the fields finds them."""
    out: dict[str, Any] = {}
    for name, value in msg.raw_items():
        out.setdefault(name.lower(), value)
    return list(out.items())


def check(raw: bytes) -> Message:
    msg = mimefast.parse(raw.replace(b"\r\n", b"\n").lstrip(b" \t\r\n"))
    assert list(mimefast.first_headers(msg).items()) == by_a_pass(msg)
    msg.get("subject")  # the index made first, by a read
    assert list(mimefast.first_headers(msg).items()) == by_a_pass(msg)
    return msg


def test_the_corpus_mails() -> None:
    paths = sorted(CORPUS.glob("*.eml"))
    assert paths
    indexed = sum(isinstance(check(p.read_bytes()), mimefast.IndexedMessage) for p in paths)
    assert indexed > 0


@settings(max_examples=1000, deadline=None)
@given(st.lists(_LINES, min_size=1, max_size=10))
def test_generated_header_blocks(lines: list[str]) -> None:
    head = "\n".join(lines)
    check(f"{head}\n\nbody\n".encode("utf-8", "surrogateescape"))


def test_undecodable_bytes_repeated_names_and_changes() -> None:
    raw = (
        b"From: Jan <jan@acme.example>\nSubject: Za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87 \xff\n"
        b"X-Tag: one\nx-tag: two\nX-TAG: \xc5\x82\nTo: 601123456@sms.example.com\n"
        b"Content-Type: text/plain; charset=utf-8\n\nTekst\n"
    )
    msg = check(raw)
    assert isinstance(msg, mimefast.IndexedMessage)
    changes = [
        lambda m: m.__setitem__("X-New", "v"),
        lambda m: m.__delitem__("x-tag"),
        lambda m: m.replace_header("Subject", "Inny"),
        lambda m: m.add_header("X-Added", "a", name="b"),
        lambda m: m.set_param("charset", "iso-8859-2"),
        lambda m: m.set_raw("Subject", "Pierwszy? nie, drugi"),
        lambda m: m.__setitem__("X-Bytes", "\udcc5\udc82"),
    ]
    for change in changes:
        change(msg)
        assert list(mimefast.first_headers(msg).items()) == by_a_pass(msg)


def test_the_callers_own_dict() -> None:
    msg = check(b"From: a@acme.example\nSubject: x\n\nbody\n")
    mimefast.first_headers(msg)["subject"] = "changed"
    assert msg.get("subject") == "x"
    assert mimefast.first_headers(msg)["subject"] == "x"
