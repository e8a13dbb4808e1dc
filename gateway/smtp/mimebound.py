"""A bound on a mail's MIME structure, read from its raw bytes before the email package parses it.

The feed parser's work grows with the parts of a mail and, per line, with how deep the line is
nested: a 1 MiB mail of 26,000 one-line parts took 1.7-3.4 s, 275,000 parts in a 10 MB one held an
intake worker's loop for over 30 s (the daemon killed it as silent, with every other session on
it, and each retry of the mail did it again), and 900 nested multiparts in 50 KB took a second
before `mimebody` refused them as too deep. No mail client writes a thousand parts or nests thirty
deep: such a mail is refused for good (`554 5.6.0`, as the nesting past `mimebody`'s bound is)
from a scan of its boundary declarations and delimiter lines, a few ms a MB, and never parsed.
"""

from __future__ import annotations

import re

from gateway.smtp import replies
from gateway.smtp.mimebody import _MAX_DEPTH

MAX_PARTS = 1000
TOO_MANY_PARTS = replies.UNREADABLE.format(f"more than {MAX_PARTS} MIME parts")
TOO_DEEP = replies.UNREADABLE.format("MIME nesting too deep")
# A declared boundary (RFC 2046 5.1.1: quoted, or a token).
_DECLARED = rb'(?i)\bboundary[ \t]*=[ \t]*(?:"([^"\r\n]*)"|([^\s;"]+))'


def refusal(raw: bytes) -> str | None:
    """The reply refusing `raw` for its MIME structure, or None (nearly every mail: two counts)."""
    # A line may end at a lone CR too: the feed parser reads 26,000 parts so ended as any.
    # (`find`, not `in`: bytes' `in` formats a TypeError first, see protocol._unstuffed.)
    lines = raw.count(b"\n--") + (raw.count(b"\r--") if raw.find(b"\r") >= 0 else 0)
    if lines <= MAX_PARTS and raw.lower().count(b"boundary") <= _MAX_DEPTH:
        return None  # neither more delimiter lines nor more nesting possible than allowed
    declared = {quoted or token for quoted, token in re.findall(_DECLARED, raw)} - {b""}
    if not declared:
        return None
    # The declarations and the delimiter lines of declared boundaries, in the order of the mail:
    # the boundaries named in the pattern (quick past other lines starting "--"), unless so many
    # that the pattern would cost more than any line (then each line's is looked up).
    if len(declared) <= MAX_PARTS:
        alternatives = b"|".join(re.escape(b) for b in sorted(declared, key=len, reverse=True))
    else:
        alternatives = rb"[^\r\n]*?"
    line = rb"(?:^|(?<=\r))--(" + alternatives + rb")(--)?[ \t]*(?=[\r\n]|\Z)"
    tokens = re.compile(_DECLARED + b"|" + line, re.M)
    stack: list[bytes] = []  # the boundaries open, innermost last, as the feed parser keeps them
    parts = 0
    for found in tokens.finditer(raw):  # not findall: it would read the whole mail first
        quoted, token, boundary, closing = found.groups()
        if not boundary:
            if opened := quoted or token:
                stack.append(opened)
                if len(stack) > _MAX_DEPTH + 1:
                    return TOO_DEEP
            continue
        if boundary not in declared:
            continue
        parts += not closing
        if parts > MAX_PARTS:
            return TOO_MANY_PARTS
        if boundary in stack:  # inner multiparts end with it (unclosed ones too), and it if closed
            del stack[stack.index(boundary) + (not closing) :]
    return None
