"""An ASCII part sent as it is (no transfer encoding, 7bit, 8bit, binary) is read as the email
package reads it, without its `get_payload(decode=True)`.

`charsets.payload_bytes` runs for the text part of every mail; for the common one, an ASCII text
not encoded for transfer, it now takes the bytes of the part's str itself (what the email package's
decode gives such a part) and leaves every other part to the email package as before. Held here to
the function as it was over every part of the corpus and of mails built from the transfer encodings,
their spellings and payloads (ASCII, 8-bit, undecodable bytes, empty), one part and multipart, both
through the email package's parser and the gateway's own (`mimefast`).
"""

from __future__ import annotations

import base64
import binascii
import email
import itertools
from email.message import Message
from email.policy import compat32

from gateway.smtp import mimefast
from gateway.smtp.charsets import _B64_CHARS, _to_bytes, payload_bytes
from tests.test_golden import CORPUS


def payload_bytes_as_it_was(part: Message) -> bytes:
    """`payload_bytes` before the shortcut: every part not in base64 through the email package."""
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if cte != "base64":
        decoded = part.get_payload(decode=True)
        return decoded if isinstance(decoded, bytes) else b""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return b""
    raw = _to_bytes(payload)
    compact = raw.translate(None, b" \t\r\n")
    try:
        return base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        pass
    if b" " in raw.strip() or len(compact) < 16 or not _B64_CHARS.fullmatch(compact):
        return raw
    return base64.b64decode(compact[: len(compact) // 4 * 4])


def same_for_every_part(msg: Message) -> int:
    n = 0
    for part in msg.walk():
        assert payload_bytes(part) == payload_bytes_as_it_was(part), repr(
            part.get("content-transfer-encoding")
        )
        n += 1
    return n


def parsed(raw: bytes) -> list[Message]:
    return [
        email.message_from_bytes(raw, policy=compat32),
        mimefast.parse(raw.replace(b"\r\n", b"\n").lstrip(b" \t\r\n")),
    ]


def test_every_part_of_the_corpus() -> None:
    paths = sorted(CORPUS.glob("*.eml"))
    assert len(paths) > 30
    parts = sum(same_for_every_part(msg) for path in paths for msg in parsed(path.read_bytes()))
    assert parts > 100


ENCODINGS = ["", "7bit", "8bit", "binary", " 8BIT ", "7Bit", "quoted-printable", "Quoted-Printable ",
             "base64", " BASE64", "x-uuencode", "uuencode", "bogus", "8bit; x"]  # fmt: skip
PAYLOADS = [
    b"Benchmark message number 7. The meeting is moved to 10:00, room 4.\n",
    b"",
    b"=C5=BC=C3=B3=C5=82w =\n= ok\n",
    "Zażółć gęślą jaźń\n".encode(),
    "Zażółć\n".encode("cp1250"),
    b"\xff\xfe\x00\x80 raw\n",
    b"U2VydmVyIHBhZMWCIHcgbm9jeQ==\n",
    b"begin 644 x.txt\n#86)C\n`\nend\n",
]


def test_mails_of_every_transfer_encoding_spelling_and_payload() -> None:
    for cte, payload, multipart in itertools.product(ENCODINGS, PAYLOADS, (False, True)):
        head = b"From: a@b.example\nSubject: x\nMIME-Version: 1.0\n"
        field = f"Content-Transfer-Encoding: {cte}\n".encode() if cte else b""
        part = b"Content-Type: text/plain; charset=utf-8\n" + field + b"\n" + payload
        if multipart:
            raw = head + b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n' + part + b"\n--b--\n"
        else:
            raw = head + part
        for msg in parsed(raw):
            same_for_every_part(msg)


def test_a_part_made_in_code() -> None:
    for payload in ["plain ascii", "ż not ascii", "", "surrogate \udcff"]:
        for cte in ("", "8bit", "quoted-printable"):
            msg = Message()
            if cte:
                msg["Content-Transfer-Encoding"] = cte
            msg.set_payload(payload)
            assert payload_bytes(msg) == payload_bytes_as_it_was(msg)
    assert payload_bytes(Message()) == payload_bytes_as_it_was(Message()) == b""  # no payload at all
