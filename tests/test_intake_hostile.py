"""Mail built to hurt the reader: inputs that made intake loop for hours or raise inside, found by
fuzzing. Each hang check runs the read in a process of its own with a bound dozens of times what
the read takes now; on the code before the fix each one ran for minutes to hours."""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import compressed_rtf
import pytest
from compressed_rtf.crc32 import crc32
from hypothesis import given
from hypothesis import strategies as st
from striprtf.striprtf import rtf_to_text
from structlog.testing import capture_logs

from gateway.smtp import htmlbody, mimefast
from gateway.smtp.intake import IntakeRefused, read_mail

ROOT = Path(__file__).resolve().parents[1]
HEAD = b"From: a@b.pl\nTo: 48600100200@sms.example.com\nSubject: hi\n"


def tnef_mail(mapi_count: int, *, body: tuple[int, bytes] | None = None, prop: int = 0x1000) -> bytes:
    """A mail with a winmail.dat whose MAPI property block claims `mapi_count` (with a text part),
    or (`body`) holds one property `prop` (PR_BODY) of the given MAPI type and value (the only body)."""

    def attribute(level: int, name: int, kind: int, data: bytes) -> bytes:
        checksum = struct.pack("<H", sum(data) & 0xFFFF)
        return struct.pack("<BHHI", level, name, kind, len(data)) + data + checksum

    props = struct.pack("<I", mapi_count)
    if body is not None:  # one property of the given MAPI type, holding `body`'s bytes as its value
        props = struct.pack("<I", 1) + struct.pack("<HH", body[0], prop) + body[1]
    blob = struct.pack("<IH", 0x223E9F78, 1) + attribute(1, 0x9003, 0x0006, props)
    text = b"" if body is not None else b"Content-Type: text/plain\n\nhello\n--b\n"
    return (
        HEAD
        + b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\n'
        + text
        + b'Content-Type: application/ms-tnef; name="winmail.dat"\nContent-Transfer-Encoding: base64\n\n'
        + base64.encodebytes(blob)
        + b"--b--\n"
    )


def read_in_a_process(raw: bytes, seconds: float = 30.0) -> str:
    """read_mail's SMS text (or refusal) from a process of its own, killed after `seconds`."""
    script = textwrap.dedent(
        """
        import sys
        from gateway.smtp.intake import IntakeRefused, read_mail
        try:
            print(read_mail(sys.stdin.buffer.read()).text)
        except IntakeRefused as refused:
            print(refused.reply)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=raw, capture_output=True, cwd=ROOT, timeout=seconds, check=True
    )
    return done.stdout.decode()


def test_a_winmail_dat_claiming_four_billion_properties_is_read_at_once() -> None:
    assert read_in_a_process(tnef_mail(0xFFFFFFFF)).startswith("hi: hello")


def test_a_sign_off_followed_by_a_long_run_of_spaces_is_read_at_once() -> None:
    # Within the 100,000 characters intake cuts at (past them, the "x" that made it slow is gone).
    body = b"Hello there\nRegards" + b" " * 95_000 + b"x\n"
    assert read_in_a_process(HEAD + b"\n" + body).startswith("hi: Hello there")


def test_xhtml_with_many_unclosed_tags_is_read_at_once() -> None:
    html = b'<?xml version="1.0" encoding="utf-8"?><html><body>Hi' + b"<" * 1_000_000 + b"</body></html>"
    assert "Hi" in read_in_a_process(HEAD + b"Content-Type: text/html; charset=utf-8\n\n" + html)


def test_a_content_type_full_of_quoted_semicolons_is_read_at_once() -> None:
    ctype = b'Content-Type: text/plain; charset=utf-8; a="' + b";" * 1_000_000 + b'"\n'
    assert read_in_a_process(HEAD + ctype + b"\nhello\n").startswith("hi: hello")


def read_cleanly(raw: bytes) -> str:
    """The SMS text or refusal, failing on an internal error (which intake logs and turns into a
    refusal, so that it would otherwise pass unnoticed)."""
    with capture_logs() as logs:
        try:
            text = read_mail(raw).text
        except IntakeRefused as refused:
            text = refused.reply
    assert not [e for e in logs if e["event"] in ("intake.unreadable", "intake.html_unreadable")]
    return text


def test_a_winmail_dat_body_of_a_number_type_is_no_body() -> None:
    # PR_BODY (0x1000) typed PT_LONG (0x0003): tnefparse hands an int over; the mail is still read
    # (its subject alone, with the attachment noted).
    assert read_cleanly(tnef_mail(1, body=(0x0003, b"\x07\x00\x00\x00"))).startswith("hi")


def test_a_machine_mail_header_without_a_first_word_is_machine_mail() -> None:
    with capture_logs() as logs:
        mail = read_mail(HEAD + b"Auto-Submitted: ;\n\nI am away\n")
    assert mail.automatic is not None  # read as machine mail, not refused as unreadable
    assert not [e for e in logs if e["event"] == "intake.unreadable"]


def test_xhtml_with_an_xml_declaration_is_converted_not_stripped() -> None:
    html = b'<?xml version="1.0" encoding="utf-8"?><html><body><p>First</p><p>Second</p></body></html>'
    text = read_cleanly(HEAD + b"Content-Type: text/html; charset=utf-8\n\n" + html)
    assert "First\n" in text and "Second" in text


@given(st.text(alphabet='ab=;"\\ x\t', max_size=40))
def test_the_linear_parameter_split_is_the_email_packages(value: str) -> None:
    assert mimefast._parseparam_linear(value) == mimefast._parseparam_stdlib(value)


def lzfu_bomb(runs: int) -> bytes:
    """PR_RTF_COMPRESSED at LZFu's highest ratio: "{\\rtf1 x", then runs of 8 references that each
    repeat the last character 17 times (17 bytes of RTF per 2 bytes of stream)."""
    stream = bytearray(b"\x00{\\rtf1 x")  # a run of 8 literals
    written = 207 + 8  # the dictionary's preset text, then what was written
    for _ in range(runs):
        stream.append(0xFF)
        for _ in range(8):
            stream += struct.pack(">H", ((written - 1) % 4096) << 4 | 15)
            written += 17
    stream += b"\x01" + struct.pack(">H", (written % 4096) << 4)  # the end: a reference to itself
    return (
        struct.pack("<II", len(stream) + 12, 0) + b"LZFu" + struct.pack("<I", crc32(bytes(stream))) + stream
    )


def test_a_compressed_rtf_body_is_read_from_its_start_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # 730 KB of maximum-ratio LZFu is 5.8 MB of RTF: decompressed and stripped whole (pure Python),
    # it held the event loop 9 s. Now the first 32 KiB of the stream are read: pages of text still.
    rtf = lzfu_bomb(43_000)
    assert len(compressed_rtf.decompress(rtf)) > 5_000_000  # what the reader no longer makes
    stripped: list[int] = []  # the RTF each strip was given (the real striprtf still runs)

    def measured(text: str, **kw: Any) -> str:
        stripped.append(len(text))
        return rtf_to_text(text, **kw)

    monkeypatch.setattr(htmlbody, "rtf_to_text", measured)
    value = struct.pack("<II", 1, len(rtf)) + rtf + bytes(-len(rtf) % 4)
    assert read_cleanly(tnef_mail(1, body=(0x0102, value), prop=0x1009)).startswith("hi: xxxxxxxx")
    assert len(stripped) == 1 and 300_000 < stripped[0] <= 400_000


def literal_lzfu(rtf: bytes) -> bytes:
    """PR_RTF_COMPRESSED holding `rtf` as literals only (a control byte of 0 before each 8 bytes):
    what LZFu makes of data that does not compress, such as a picture's hex."""
    stream = b"".join(b"\x00" + rtf[i : i + 8] for i in range(0, len(rtf), 8))
    header = struct.pack("<II", len(stream) + 12, len(rtf)) + b"LZFu" + struct.pack("<I", crc32(stream))
    return header + stream


def test_the_text_after_a_letterhead_picture_is_read() -> None:
    # A 20 KB picture before the text (Outlook's RTF with a letterhead) is 40 KB of hex that hardly
    # compresses: the first bound, 32 KiB of LZFu, cut the text off and sent the subject alone.
    picture = bytes(range(256)) * 80
    rtf = b"{\\rtf1\\ansi {\\pict\\pngblip " + picture.hex().encode() + b"}Meeting moved to 10:00.\\par}"
    value = struct.pack("<II", 1, len(literal_lzfu(rtf))) + literal_lzfu(rtf)
    value += bytes(-len(value) % 4)
    assert read_cleanly(tnef_mail(1, body=(0x0102, value), prop=0x1009)) == "hi: Meeting moved to 10:00."


def test_a_compressed_rtf_body_within_the_bound_is_read_whole() -> None:
    rtf = compressed_rtf.compress(b"{\\rtf1\\ansi Spotkanie o 10:00\\par " + b"Sala 4. " * 500 + b"koniec}")
    value = struct.pack("<II", 1, len(rtf)) + rtf + bytes(-len(rtf) % 4)
    text = read_cleanly(tnef_mail(1, body=(0x0102, value), prop=0x1009))
    assert text.startswith("hi: Spotkanie o 10:00\nSala 4.") and text.endswith("koniec")
