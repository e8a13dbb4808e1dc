"""A compat32 message tree (a bounce's `multipart/report`) written as `Message.as_bytes` writes it,
without the email package's costliest steps where a value makes them no-ops.

Writing a bounce took some 7 million instructions, as much as the daemon's whole work on four
mails, and about half of it was the email package folding header values that need no folding:
compat32 runs every `str` value through `email.header.Header`, which splits it at its spaces and
joins it again, and the generator compiles a regular expression for every random boundary it makes,
to look for it in the parts. A value of printable ASCII words one space apart that fits its line
comes out of `Header` as it went in; a boundary's lines are found by looking for them. Anything
else goes the email package's way.
"""

from __future__ import annotations

import re
from email.generator import BytesGenerator
from email.message import Message
from email.policy import Compat32
from io import BytesIO
from typing import Any

# Printable ASCII words, one space apart, nothing around them: what `Header` gives back unchanged
# when it fits the line (it splits only a line too long, and drops a space only at a line's end).
_ONE_LINE = re.compile(r"[!-~]+(?: [!-~]+)*")


def plain_line(name: str, value: object, max_line_length: int = 78) -> bool:
    """Whether `name: value` is written as it is, on one line, by the folders used here."""
    return (
        type(value) is str
        and len(name) + 2 + len(value) <= max_line_length
        and "=?" not in value
        and _ONE_LINE.fullmatch(value) is not None
    )


class _PlainFirst(Compat32):
    """compat32 (the report's own policy) with a plain value written without `Header`."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if self.max_line_length is not None and plain_line(name, value, self.max_line_length):
            return f"{name}: {value}{self.linesep}"
        folded: str = super()._fold(name, value, sanitize)  # type: ignore[misc]
        return folded


_POLICY = _PlainFirst()


class _Generator(BytesGenerator):
    """`BytesGenerator` whose multipart boundary is checked against the parts by looking for its
    lines, not by a regular expression compiled for each new boundary (`re`'s cache never hits:
    every boundary is random)."""

    @classmethod
    def _make_boundary(cls, text: Any = None) -> str:
        boundary: str = super()._make_boundary()  # the same random token, in the same form
        if text is None:
            return boundary
        # The email package's `^--BOUNDARY(--)?$` under re.MULTILINE: a line, between line feeds,
        # that is the delimiter or the close delimiter.
        lines = b"\n" + text + b"\n"
        b, counter = boundary, 0
        while b"\n--" + b.encode("ascii") + b"\n" in lines or b"\n--" + b.encode("ascii") + b"--\n" in lines:
            b = f"{boundary}.{counter}"
            counter += 1
        return b


def as_bytes(msg: Message) -> bytes:
    """`msg.as_bytes()` for a message of compat32 (`email.policy.compat32`), the same octets."""
    if type(msg.policy) is not Compat32:
        return msg.as_bytes()
    out = BytesIO()
    _Generator(out, mangle_from_=False, policy=_POLICY).flatten(msg, unixfrom=False)
    return out.getvalue()
