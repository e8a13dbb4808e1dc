"""A bounce written without the email package's costliest steps is the bounce it wrote.

Writing a DSN took some 7 million instructions in the daemon, as much as its whole work on four
mails; most of it was the email package folding values that need no folding, parsing plain
addresses and compiling a pattern for each random boundary (`gateway.mimewrite`, `mailheaders.text`
and `address`, `bounce._original_headers`). Each short cut is held here to the path it skips, over
thousands of values made to hit the edges: spaces, encoded-word look-alikes, controls, letters
beyond ASCII, lines at and past their length.
"""

from __future__ import annotations

import copy
import random
import unicodedata
from collections.abc import Callable
from email import header as email_header
from email import headerregistry
from email.generator import BytesGenerator, Generator
from email.message import EmailMessage, Message
from typing import Any

import pytest

from gateway import bounce, mimewrite
from gateway import mailheaders as h

STAMP = dict(sender="smsgw@sms.example.com", reporting_mta="sms.example.com", domain="sms.example.com")

# What outsiders write: plain words, the characters an address or an encoded word is made of, white
# space of every kind, controls, letters beyond ASCII and a lone surrogate (undecodable bytes).
PIECES = [
    "a", "Bench", "42", " ", "  ", "\t", "\n", "\r\n", "=?", "?=", "=?utf-8?q?x?=", ";", ",", ":", "@",
    ".", "..", "<", ">", '"', "(", ")", "[", "]", "\\", "+48601123456", "x" * 40, "x" * 75, "zażółć",
    "\u00a0", "\u2028", "\u2060", "\x00", "\x07", "\x7f", "\udcff", "é", "…", "!#$%&'*+/=^_`{|}~-",
]  # fmt: skip


def words(rng: random.Random, most: int = 8) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, most)))


def plain(rng: random.Random, most: int = 80) -> str:
    """Printable ASCII words one space apart, of up to `most` characters: the short cut's own case."""
    out = " ".join(
        rng.choice(["Bench", "42", "a-b", "x" * rng.randint(1, 30), ";", "<m@x>", "=", "?"]) for _ in range(9)
    )
    return out[: rng.randint(1, most)].strip() or "a"


ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"


def address_like(rng: random.Random) -> str:
    """Dot-atoms on both sides of an @ mostly, with what breaks one now and then."""

    def atom() -> str:
        return "".join(rng.choice(ATEXT) for _ in range(rng.randint(1, 6)))

    def dot_atom() -> str:
        return ".".join(atom() for _ in range(rng.randint(1, 3)))

    value = f"{dot_atom()}@{dot_atom()}"
    if rng.random() < 0.4:
        at = rng.randrange(len(value) + 1)
        value = (
            value[:at]
            + rng.choice(['"', "..", ".", " ", "@", "(", "[1.2.3.4]", "é", "=?", "\t", ""])
            + value[at:]
        )
    return value


# ---- mailheaders.text: the loop it skips for printable ASCII -----------------------------------


def text_by_character(value: object, limit: int = h.SUBJECT_MAX) -> str:
    """`mailheaders.text` as it was written before its short cut: a look-up for every character."""
    chars = []
    for c in str(value).encode("utf-8", "replace").decode("utf-8").replace("\x00", ""):
        if c.isspace() or unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp"):
            chars.append(" ")
        else:
            chars.append(c)
    s = " ".join("".join(chars).split())
    if len(s) > limit:
        s = s[: max(limit - 1, 0)].rstrip() + "…"
    return s.replace("=?", "=\u2060?")


def test_a_header_text_is_what_the_character_loop_made_of_it() -> None:
    rng = random.Random(20261206)
    values: list[object] = [words(rng, 12) for _ in range(20_000)] + [plain(rng, 200) for _ in range(5_000)]
    values += [1234, None, b"bytes", "".join(chr(c) for c in range(128))]
    for value in values:
        for limit in (h.SUBJECT_MAX, 5, 320):
            assert h.text(value, limit=limit) == text_by_character(value, limit), repr(value)


# ---- mailheaders.address: a dot-atom on both sides is not parsed ----------------------------------


def address_by_parse(value: str | None, utf8: bool = False) -> str:
    """`mailheaders.address` as it was written before its short cut: every value parsed."""
    s = h.text(value or "", limit=320)
    if not s or " " in s or "@" not in s:
        return "undisclosed-recipients:;"
    spec = h._addr_spec(s)
    if spec is None:
        return "undisclosed-recipients:;"
    ascii_form = h.ascii_address(spec)
    if ascii_form is not None:
        return ascii_form
    return spec if utf8 else "undisclosed-recipients:;"


def test_an_address_is_what_the_parse_made_of_it() -> None:
    rng = random.Random(61206)
    values = [address_like(rng) for _ in range(6_000)] + [words(rng) for _ in range(1_000)]
    values += ["", None, "a@b", "a.@b", ".a@b", "a@b.", "a@-", "=?x?=@b.c", "x" * 320 + "@b.c", "ą@b.pl"]
    fast = 0
    for value in values:
        for utf8 in (False, True):
            assert h.address(value, utf8=utf8) == address_by_parse(value, utf8), repr(value)
        fast += bool(h._PLAIN_ADDRESS.fullmatch(h.text(value or "", limit=320)))
    assert fast > 3_000  # the short cut was taken, not only the parse


# ---- the quoted headers of a bounce ---------------------------------------------------------------


def quoted_by_package(fields: list[tuple[str, str]]) -> str:
    """The text/rfc822-headers part as it was written before: each field parsed and folded."""
    original = EmailMessage(policy=h.POLICY)
    for name, value in fields:
        original[name] = value
    return "".join(original.policy.fold(name, value) for name, value in original.items())


def random_info(rng: random.Random) -> dict[str, Any]:
    subject = rng.choice([plain(rng, 100), words(rng), "", None, "Bench 13", "x " * 39 + "y"])
    info: dict[str, Any] = dict(
        recipient=rng.choice(["+48601123413", "+48601123456", words(rng, 3)]),
        state=rng.choice(["failed", "expired", "cancelled", "delivered", "unreported"]),
        reason=rng.choice(
            [None, "", "ESME_RINVDSTADR (0x0B)", "UNDELIV err:001", words(rng), plain(rng, 400)]
        ),
        parts_total=rng.randint(1, 4),
        text=rng.choice([plain(rng, 160), words(rng, 20), ""]),
        created_at=1_796_527_907.5 + rng.randint(0, 10**7),
        mail_from=rng.choice([address_like(rng), "bench@acme.example", "", None]),
        header_message_id=rng.choice(
            [f"<{address_like(rng)}>", "<bench-13-1@acme.example>", words(rng), None]
        ),
        subject=subject,
        rcpt=rng.choice([f"{address_like(rng)}", "+48601123413@sms.example.com", None]),
        dsn_ret=rng.choice([None, "hdrs", "full"]),
        envid=rng.choice([None, None, plain(rng, 100), "a  b"]),
        orcpt=rng.choice([None, None, f"rfc822;{address_like(rng)}", "utf-8;józef@example.pl"]),
    )
    return info


def test_the_quoted_headers_are_those_the_email_package_folds() -> None:
    rng = random.Random(3464)
    short = 0
    for _ in range(2_000):
        info = random_info(rng)
        final = bounce._final_recipient(info, h.text(info["recipient"], limit=64), "sms.example.com")
        fields = [("From", h.address(info["mail_from"])), ("To", final)]
        subject = h.text(info.get("subject") or "", limit=500)
        if subject:
            fields.append(("Subject", subject))
        if msgid := h.msgid(info.get("header_message_id")):
            fields.append(("Message-ID", msgid))
        assert bounce._original_headers(info, [final]) == quoted_by_package(fields), repr(fields)
        short += all(mimewrite.plain_line(name, value) for name, value in fields)
    assert short > 300
    # An encoded word is read by the parse (none gets here: `text` and `msgid` break them up).
    word = [("Subject", "=?utf-8?q?x?=")]
    assert not mimewrite.plain_line(*word[0]) and quoted_by_package(word) == "Subject: x\n"


# ---- the report written as `as_bytes` writes it ------------------------------------------------


def both_ways(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Each report the bounce builders flatten, written by `mimewrite` and by `Message.as_bytes`
    from copies of the same tree, the boundary's random token the same for both."""
    written: list[tuple[bytes, bytes]] = []
    ours = mimewrite.as_bytes

    def compare(msg: Message) -> bytes:
        seed = random.getrandbits(64)
        theirs_tree, ours_tree = copy.deepcopy(msg), copy.deepcopy(msg)
        random.seed(seed)
        theirs = theirs_tree.as_bytes()
        random.seed(seed)
        written.append((ours(ours_tree), theirs))
        return written[-1][0]

    monkeypatch.setattr(mimewrite, "as_bytes", compare)
    return written


def test_a_bounce_is_written_octet_for_octet_as_the_email_package_writes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written = both_ways(monkeypatch)
    rng = random.Random(20261206)
    for _ in range(800):
        info = random_info(rng)
        build: Callable[..., bytes] = (
            bounce.success_dsn if info["state"] in ("delivered", "unreported") else bounce.dsn
        )
        build(
            info,
            **STAMP,
            rcpt=rng.choice(["bench@acme.example", address_like(rng)]),
            lang=rng.choice(["en", "pl"]),
        )
    assert len(written) == 800
    for ours, theirs in written:
        assert ours == theirs


def test_a_boundary_is_moved_off_every_line_the_email_package_moves_it_off() -> None:
    rng = random.Random(1341)
    for _ in range(3_000):
        seed = rng.getrandbits(64)
        random.seed(seed)
        token = Generator._make_boundary()
        lines = [f"--{token}", f"--{token}--", f"--{token}.0", f"--{token}.0--", f"x--{token}", f"--{token} ",
                 f"--{token}\r", "", "text", f"--{token}---", f"--{token}.1"]  # fmt: skip
        sep = rng.choice(["\n", "\r\n"])
        text = sep.join(rng.choice(lines) for _ in range(rng.randint(0, 6))).encode("ascii")
        random.seed(seed)
        theirs = BytesGenerator._make_boundary(text)
        random.seed(seed)
        assert mimewrite._Generator._make_boundary(text) == theirs, text


def test_a_plain_bounce_folds_no_plain_field_parses_no_address_and_compiles_no_pattern(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the short cuts are for: before them, every one of its some 25 fields went through
    # `Header`, each address through the parser, and each boundary through `re.compile`.
    calls: dict[str, int] = {"Header": 0, "Address": 0, "pattern": 0}

    def counting(cls: type, name: str, key: str) -> None:
        original = getattr(cls, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[key] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(cls, name, counted)

    counting(email_header.Header, "__init__", "Header")
    counting(headerregistry.Address, "__init__", "Address")
    compile_re = BytesGenerator._compile_re

    def compiled(cls: type, s: str, flags: int) -> Any:
        calls["pattern"] += 1
        return compile_re(s, flags)

    monkeypatch.setattr(BytesGenerator, "_compile_re", classmethod(compiled))
    info = dict(
        recipient="+48600000013", state="failed", reason="ESME_RINVDSTADR (0x0B)", parts_total=1,
        text="Bench 13: Benchmark message number 13.", created_at=1_796_527_907.5,
        mail_from="bench@acme.example", header_message_id="<bench-13-1@acme.example>", subject="Bench 13",
        rcpt="+48600000013@sms.example.com", notify=None, orcpt=None, dsn_ret=None, envid=None,
    )  # fmt: skip
    raw = bounce.dsn(info, **STAMP, rcpt="bench@acme.example")
    assert b"Final-Recipient: rfc822; +48600000013@sms.example.com\n" in raw
    # The one field left to `Header`: the report's Content-Type, with its boundary past the line.
    assert calls == {"Header": 1, "Address": 0, "pattern": 0}
