"""An answer's From with a long non-ASCII contact name is valid RFC 2047, read alike by every reader.

The staff mail's To named the phone "Zażółć gęślą jaźń 🎉" four times over; the answer's From was
folded by CPython's default folder: an encoded word of 76 characters (RFC 2047 2 allows 75), lines
of 77 and 78, a word cut inside ("g" | "ęślą"), which Python's own parser read with spaces in it.
Real mail over SMTP into the daemon, the built-in simulator over SMPP, the answer caught by a real
SMTP relay.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from pathlib import Path

from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_answer_from_name import ADDRESS, RCPT, SHOWN, answered, sender_of
from tests.test_two_way import two_way_config

LONG = " ".join(["Zażółć gęślą jaźń 🎉"] * 4)
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def rfc2047_name(lines: list[str]) -> str:
    """The display name as RFC 2047 6.2 reads it, as mail clients do: white space between two
    encoded words is dropped, any other kept; a quoted string without its quotes."""
    phrase = " ".join(line.strip() for line in lines).partition(":")[2].rpartition("<")[0]
    tokens = re.findall(r'=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=|"(?:[^"\\]|\\.)*"|[^\s"]+', phrase)
    shown, last_encoded = "", False
    for token in tokens:
        encoded = _ENCODED_WORD.fullmatch(token) is not None
        if encoded:
            text = str(make_header(decode_header(token)))
        else:
            text = re.sub(r"\\(.)", r"\1", token[1:-1]) if token.startswith('"') else token
        shown += text if not shown or (encoded and last_encoded) else f" {text}"
        last_encoded = encoded
    return shown


def from_field(raw: bytes) -> list[str]:
    """The From header's lines as written."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii").split("\n")
    start = next(i for i, line in enumerate(head) if line.lower().startswith("from:"))
    end = next((i for i in range(start + 1, len(head)) if not head[i][:1].isspace()), len(head))
    return head[start:end]


async def test_a_long_non_ascii_contact_name_is_encoded_within_the_limits_and_read_back_exactly(
    tmp_path: Path,
) -> None:
    relay = free_port()
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay)) as gw,
    ):
        await answered(gw, sink, f'"{LONG}" <{RCPT}>')
        await answered(gw, sink, f'"Paweł Wiśniewski" <{RCPT}>', n=2)
    long_raw, short_raw = sink.messages[0][2], sink.messages[1][2]
    for raw in (long_raw, short_raw):
        lines = from_field(raw)
        words = [w for line in lines for w in _ENCODED_WORD.findall(line)]
        assert words and all(len(w) <= 75 for w in words), lines  # RFC 2047 2
        assert all(len(line) <= 76 for line in lines if _ENCODED_WORD.search(line)), lines
        # Python's parser, strict and default, reads what RFC 2047 6.2 (and mail clients) read.
        for p in (policy.strict, policy.default):
            [address] = message_from_bytes(raw, policy=p)["From"].addresses
            assert address.display_name == rfc2047_name(lines), lines
            assert address.addr_spec == sender_of(raw)[1] == ADDRESS
    [long_from] = message_from_bytes(long_raw, policy=policy.default)["From"].addresses
    shown = long_from.display_name
    assert shown.endswith(f"… ({SHOWN})") and "  " not in shown and long_from.addr_spec == ADDRESS
    kept = shown.removesuffix(f"… ({SHOWN})")
    assert LONG.startswith(kept) and kept.startswith("Zażółć gęślą jaźń"), shown  # cut, not garbled
    [short_from] = message_from_bytes(short_raw, policy=policy.default)["From"].addresses
    assert short_from.display_name == f"Paweł Wiśniewski ({SHOWN})"  # whole where it fits


def test_a_name_that_fits_one_encoded_word_is_one_as_before() -> None:
    # Most phones' names: written as one encoded word, as Outlook writes a name and as the gateway
    # did before long names were folded word by word (a run of atoms and encoded words is valid, but
    # a name like this one has no need of it).
    from email.headerregistry import Address
    from email.message import EmailMessage

    from gateway import mailheaders

    msg = EmailMessage(policy=mailheaders.POLICY)
    msg["From"] = Address("Paweł Wiśniewski (+48 601 123 430)", addr_spec="601123430@sms.example.com")
    lines = msg.as_bytes().decode("ascii").split("\n")
    folded = [lines[0], *[line for line in lines[1:3] if line.startswith(" ")]]
    assert folded[0] == "From: =?utf-8?q?Pawe=C5=82_Wi=C5=9Bniewski_=28+48_601_123_430=29?="
    assert rfc2047_name(folded) == "Paweł Wiśniewski (+48 601 123 430)"
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.strict)["From"].addresses[0]
    assert parsed.display_name == "Paweł Wiśniewski (+48 601 123 430)"
