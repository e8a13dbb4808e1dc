"""Golden tests: every message of the shared email corpus against a reviewed expected SMS text.

Each case has a file `tests/golden/<name>.txt` that holds exactly the expected SMS text (one final
newline is ignored), or a first line `REFUSED: <part of the SMTP reply>` or `AUTOMATIC: <part of the
machine-mail reason>`. Body fragments (`bodies/*.txt`) are wrapped in a minimal text/plain UTF-8 mail
and TNEF blobs (`tnef/*.tnef`) in a minimal mail as a winmail.dat attachment, neither with a subject.
Every case runs twice: with the file's own line ends and with CRLF, as an SMTP DATA stream has them.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from gateway.smtp.intake import IntakeRefused, read_mail

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "emails"
GOLDEN = Path(__file__).resolve().parent / "golden"

_HEADERS = (
    b"From: Staff Member <staff@example.com>\n"
    b"To: 601123456@sms.example.com\n"
    b"Message-ID: <golden@example.com>\n"
    b"MIME-Version: 1.0\n"
)


def wrap_body(fragment: bytes) -> bytes:
    """A body-only fragment as the whole text/plain body of a minimal mail."""
    return (
        _HEADERS
        + b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        + (fragment)
    )


def wrap_tnef(blob: bytes) -> bytes:
    """A raw TNEF blob as the winmail.dat attachment of a minimal Outlook-style mail."""
    return (
        _HEADERS
        + b'Content-Type: multipart/mixed; boundary="golden-boundary"\n\n--golden-boundary\n'
        + b'Content-Type: application/ms-tnef; name="winmail.dat"\nContent-Transfer-Encoding: base64\n'
        + b'Content-Disposition: attachment; filename="winmail.dat"\n\n'
        + base64.encodebytes(blob)
        + b"\n--golden-boundary--\n"
    )


def to_crlf(raw: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", raw)


def _expected(name: str) -> str:
    path = GOLDEN / f"{name}.txt"
    return path.read_text(encoding="utf-8").removesuffix("\n") if path.exists() else ""


def load_golden_cases() -> list[tuple[str, bytes, str]]:
    """(name, raw message bytes, expected) for every corpus file; expected is "" if no golden file."""
    cases = [(p.stem, p.read_bytes()) for p in sorted(CORPUS.glob("*.eml"))]
    cases += [(p.stem, wrap_body(p.read_bytes())) for p in sorted((CORPUS / "bodies").glob("*.txt"))]
    cases += [(p.stem, wrap_tnef(p.read_bytes())) for p in sorted((CORPUS / "tnef").glob("*.tnef"))]
    return [(name, raw, _expected(name)) for name, raw in cases]


CASES = load_golden_cases()


def check(raw: bytes, expected: str) -> None:
    """Assert that `raw` gives the result a golden file describes."""
    first = expected.split("\n", 1)[0]
    if first.startswith("REFUSED: "):
        with pytest.raises(IntakeRefused) as refused:
            read_mail(raw)
        assert first.removeprefix("REFUSED: ") in refused.value.reply
        assert refused.value.reply.startswith("554 5.6.0 ")
        return
    mail = read_mail(raw)
    if first.startswith("AUTOMATIC: "):
        assert mail.automatic is not None
        assert first.removeprefix("AUTOMATIC: ") in mail.automatic
    else:
        assert mail.automatic is None, mail.automatic
        assert mail.text == expected


def test_corpus_is_complete() -> None:
    # The corpus and the golden files match one to one: a missing corpus must fail, not pass silently.
    assert len(CASES) >= 50
    assert all(expected for _, _, expected in CASES), [n for n, _, e in CASES if not e]
    assert {p.stem for p in GOLDEN.glob("*.txt")} == {name for name, _, _ in CASES}


@pytest.mark.parametrize("line_ends", ["as-is", "crlf"])
@pytest.mark.parametrize(("name", "raw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_golden(name: str, raw: bytes, expected: str, line_ends: str) -> None:
    # Each corpus mail gives its reviewed SMS text (or refusal / machine-mail verdict) with any line ends.
    check(to_crlf(raw) if line_ends == "crlf" else raw, expected)
