"""An answer's From with a long non-ASCII contact name is valid RFC 2047, read whole by mail clients.

The staff mail's To named the phone "Zażółć gęślą jaźń 🎉" four times over; the answer's From was
folded by CPython's default folder: an encoded word of 76 characters (RFC 2047 2 allows 75), lines
of 77 and 78, a word cut inside ("g" | "ęślą"), which Python's own parser read with spaces in it.
Then each run of non-ASCII words was one encoded word, cut with "…": far below 60 characters.
Real mail over SMTP into the daemon, the built-in simulator over SMPP, the answer caught by a real
SMTP relay.
"""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from pathlib import Path

from gateway.forwarded import CONTACT_MAX, contact_name
from smsc.simulator.control import send_command
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_answer_from_name import ADDRESS, RCPT, SHOWN, raw_mail, sender_of
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


# Names the staff mail's To gave the phone, up to the 60 characters README promises and past them.
NAMES = [
    LONG,
    "Dział Księgowości Zakładów Mięsnych Łódź",
    "Żaneta 😀 Kowalska-Wiśniewska, Dział Obsługi Klienta Sp. z o.o.",
    "Małgorzata Wiśniewska-Żółkiewska (Dział Księgowości)",
    "Paweł Wiśniewski",
]
ORDINALS = ["pierwsze", "drugie", "trzecie", "czwarte", "piąte"]


async def test_a_long_non_ascii_contact_name_is_encoded_within_the_limits_and_read_back_whole(
    tmp_path: Path,
) -> None:
    """Each run of non-ASCII words was one encoded word, cut with "…" to fit: a 40-character name
    showed as "Dział Księgowości Zakładów… (+48 …)", far below the 60 characters a name may have.
    Now a run takes as many encoded words as it needs, each within RFC 2047's limits, and mail
    clients read the name as the staff mail gave it (cut at 60 characters, as README says)."""
    relay = free_port()
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay)) as gw,
    ):
        core, control = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        # Texts of their own, in words (a digit is set aside when mails are compared): a 4th identical
        # SMS is refused, and so is a 4th alike one each drawing the phone's same "Tak" (a mail loop).
        for n, (name, word) in enumerate(zip(NAMES, ORDINALS, strict=True), 1):
            mail = raw_mail(f'"{name}" <{RCPT}>', msgid=f"<n{n}@acme.example>", body=f"Pytanie {word}")
            assert (await gw.send(mail, [RCPT])).error is None
            await gw.until(lambda n=n: len(core.records) == n)
            command = {"op": "mo", "reply_to_last": True, "text": "Tak"}
            assert (await send_command("127.0.0.1", control, command))["ok"]
            await sink.wait(n)
    for name, (_, _, raw) in zip(NAMES, sink.messages, strict=True):
        lines = from_field(raw)
        words = [w for line in lines for w in _ENCODED_WORD.findall(line)]
        assert words and all(len(w) <= 75 for w in words), lines  # RFC 2047 2
        assert all(len(line) <= 76 for line in lines if _ENCODED_WORD.search(line)), lines
        contact = contact_name(name)
        whole = contact is not None and contact.split() == name.replace("(", " ").replace(")", " ").split()
        assert contact is not None and (whole or len(contact) == CONTACT_MAX), contact  # brackets dropped
        assert rfc2047_name(lines) == sender_of(raw)[0] == f"{contact} ({SHOWN})", lines
        # Python 3.11's parser, strict and default, reads a space between two encoded words (RFC
        # 2047 6.2 and mail clients join them): the same words, split only at the name's spaces.
        for p in (policy.strict, policy.default):
            [address] = message_from_bytes(raw, policy=p)["From"].addresses
            assert address.display_name.split() == f"{contact} ({SHOWN})".split(), lines
            assert address.addr_spec == sender_of(raw)[1] == ADDRESS
    long_shown = sender_of(sink.messages[0][2])[0]
    assert long_shown.endswith(f"… ({SHOWN})") and LONG.startswith(long_shown.removesuffix(f"… ({SHOWN})"))
    short = from_field(sink.messages[-1][2])
    assert len(short) == 2 and len(_ENCODED_WORD.findall(short[0])) == 1, short  # whole where it fits


def test_a_word_longer_than_an_encoded_word_is_split_between_its_grapheme_clusters() -> None:
    """An emoji with its skin tone, a flag, a letter with a combining accent: split between them,
    never inside a UTF-8 character or a cluster, and read back whole."""
    from email.headerregistry import Address
    from email.message import EmailMessage

    import regex

    from gateway import mailheaders

    clusters = ["👍🏽", "🇵🇱", "e\u0301", "ż"] * 6
    name = f"{''.join(clusters)} Kowalski"
    msg = EmailMessage(policy=mailheaders.POLICY)
    msg["From"] = Address(name, addr_spec="601123430@sms.example.com")
    lines = from_field(msg.as_bytes())
    words = [w for line in lines for w in _ENCODED_WORD.findall(line)]
    assert len(words) > 1 and all(len(w) <= 75 for w in words), lines
    pieces = [str(make_header(decode_header(w))) for w in words]  # each valid UTF-8 on its own
    assert all(c in clusters for piece in pieces for c in regex.findall(r"\X", piece)), pieces
    assert rfc2047_name(lines) == name


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
