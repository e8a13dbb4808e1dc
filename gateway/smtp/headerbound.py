"""Bounds on a mail's header blocks, read from its raw bytes before the email package parses them.

Three shapes within the size limit cost far more than their size says (`bench/mime_shapes.py`):
a header block of 130,000 fields (150-250 ms a MB in the parse, every field of it kept), a
Content-Type of 100,000 parameters (0.6 s a MB: the look-up of its charset splits and decodes every one)
and a Subject of 75,000 RFC 2047 encoded words (2.8 s at 5 MB before `charsets` joined them in
linear time, 0.1 s a MB since). No mail client writes any of them: Outlook's mail has 60-150
fields, a Content-Type or Content-Disposition a few parameters (a long file name split by RFC
2231 some tens), a subject a few tens of words. Past bounds that leave real mail far behind
such a mail is refused for good (`554 5.6.0`, naming which bound), as `mimebound` refuses its
structure, from counts of its bytes: the top header block and each part's (after a delimiter of
a declared boundary), a few ms a MB, and never parsed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from gateway.smtp import replies
from gateway.smtp.mimebound import _DECLARED, MAX_PARTS

MAX_FIELDS = 1000  # fields in one header block
MAX_PARAMS = 100  # parameters of one Content-Type or Content-Disposition
MAX_WORDS = 1000  # encoded words in one field
TOO_MANY_FIELDS = replies.MANY_FIELDS.format(MAX_FIELDS)
TOO_MANY_PARAMS = replies.MANY_PARAMS.format(MAX_PARAMS)
TOO_MANY_WORDS = replies.MANY_WORDS.format(MAX_WORDS)
REFUSALS = frozenset({TOO_MANY_FIELDS, TOO_MANY_PARAMS, TOO_MANY_WORDS})

# The end of a header block: an empty line, whatever the line ends (the feed parser ends a line at
# a lone CR too; a block taken too long only counts more, never fewer, fields than the parser reads).
# "\n\n", "\r\r" and "\n\r" (also the middle of "\r\n\r\n") are found by `bytes.find`, a regex's
# alternation took 30 ms a MB.
_BLOCK_ENDS = (b"\n\n", b"\r\r", b"\n\r")
# Where a field starts (line ends made LF): a line that is not a continuation.
_FIELD_START = re.compile(rb"\n(?![ \t])")
_PARAMETERED = (b"content-type", b"content-disposition")
_DECLARED_AT = re.compile(_DECLARED.replace(rb"\b", b"", 1))  # at a "boundary" found lowercased
_WORD = [bytes([c]).isalnum() or c == ord("_") for c in range(256)]  # a letter to `\b` in a bytes regex


def refusal(text: bytes) -> str | None:
    """The reply refusing `text` for one of its header blocks, or None.

    Called after `mimebound` has passed the mail: a thousand parts at most, so as many part heads."""
    lines = text.count(b"\n") + text.count(b"\r")
    if lines <= MAX_FIELDS and text.count(b";") <= MAX_PARAMS and text.count(b"=?") <= MAX_WORDS:
        return None  # nearly every mail: no head can hold more of anything than the whole mail has
    ends = _Ends(text)
    if isinstance(scanned := _heads(text, 0, ends), str):
        return scanned
    if not (declared := _declared(text)):
        return None  # one part: one head (or a chain of enclosed messages' heads), counted
    for start in _part_starts(text, declared, ends.cr):
        if start <= scanned:
            continue  # inside a head already counted
        if isinstance(refused := _heads(text, start, ends), str):
            return refused
        scanned = refused
    return None


def _declared(text: bytes) -> set[bytes]:
    """The boundaries `text` declares, as `mimebound` reads them; looked for at each "boundary" (a
    regex looking at every byte took 10 µs a KB, a third of a multipart NDR's whole read)."""
    lowered = text.lower()
    found: set[bytes] = set()
    at, looked = lowered.find(b"boundary"), 0
    while at >= 0:
        if (looked := looked + 1) > MAX_PARTS:  # a mail of nothing else: one pass of the regex
            return {quoted or token for quoted, token in re.findall(_DECLARED, text)} - {b""}
        if (one := _DECLARED_AT.match(text, at)) is not None and (at == 0 or not _WORD[text[at - 1]]):
            found.add(one.group(1) or one.group(2) or b"")
        at = lowered.find(b"boundary", at + 8)
    return found - {b""}


def _part_starts(text: bytes, declared: set[bytes], cr: bool) -> Iterator[int]:
    """Where each part's head starts: after a line "--" + a declared boundary (not a closing one).
    LF line ends with few "--" lines (every real mail, once `intake` made CRLF LF) are found by
    `bytes.find`; others by a regex of the boundaries, as `mimebound` does."""
    at, looked = (-1 if cr else text.find(b"\n--")), 0
    while at >= 0 and (looked := looked + 1) <= 4 * MAX_PARTS:
        end = text.find(b"\n", at + 3)
        end = len(text) if end < 0 else end
        if text[at + 3 : end].rstrip(b" \t") in declared:
            yield end + 1
        at = text.find(b"\n--", at + 3)
    if at < 0 and not cr:
        return
    # A lone CR, or more "--" lines than a thousand parts have: the rest, from `at`, by a regex.
    # As `mimebound`: the boundaries named in the pattern, unless so many that it would cost more.
    alternatives = b"|".join(re.escape(b) for b in sorted(declared, key=len, reverse=True))
    if len(declared) > MAX_PARTS:
        alternatives = rb"[^\r\n]*?"
    # A line starts after a lone CR too (`mimebound`'s "^" does not see those).
    delimiter = re.compile(rb"(?:^|(?<=\r))--(" + alternatives + rb")[ \t]*(?:\r\n|\r|\n)", re.M)
    for found in delimiter.finditer(text, max(at, 0)):
        if found.group(1) in declared:  # not a closing delimiter, nor another line
            yield found.end()


class _Ends:
    """The empty lines of a mail in order: each of `_BLOCK_ENDS` is looked for again only once the
    one found before is passed (a thousand part heads each searching on to the end would read a
    mail without a CR a thousand times)."""

    def __init__(self, text: bytes) -> None:
        self.text = text
        # `intake` made CRLF LF: a CR left is a lone one, in hostile mail alone. `find`, not `in`, here
        # and below: bytes' `in` formats a TypeError first (see protocol._unstuffed).
        self.cr = text.find(b"\r") >= 0
        self.found: list[int | None] = [None] * len(_BLOCK_ENDS)  # None: not looked for yet; -1: none left

    def after(self, start: int) -> int:
        """Where the first empty line at or after `start` begins (its line end), or -1."""
        for i, end in enumerate(_BLOCK_ENDS if self.cr else _BLOCK_ENDS[:1]):
            at = self.found[i]
            if at is None or -1 < at < start:
                self.found[i] = self.text.find(end, start)
        return min((at for at in self.found if at is not None and at >= 0), default=-1)


def _heads(text: bytes, start: int, ends: _Ends) -> str | int:
    """The refusal of the header block at `start` (and of the message's its body begins with), or
    where the last of them ends."""
    while True:
        found = ends.after(start)
        end = len(text) if found < 0 else found
        block = text[start:end]
        if (refused := _head(block, ends.cr)) is not None:
            return refused
        if found < 0 or block.lower().find(b"message/") < 0:
            return end
        start = found + 2


def _head(block: bytes, cr: bool) -> str | None:
    """The refusal of one header block: its fields counted as its lines less its continuation lines,
    and only when it has more ";" or "=?" than a field may, each field's."""
    if cr:
        block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if (lines := block.count(b"\n") + 1) > MAX_FIELDS:  # rarely: the continuation lines then
        if lines - block.count(b"\n ") - block.count(b"\n\t") > MAX_FIELDS:
            return TOO_MANY_FIELDS
    params, words = block.count(b";") > MAX_PARAMS, block.count(b"=?") > MAX_WORDS
    if not (params or words):
        return None
    starts = [0, *(found.end() for found in _FIELD_START.finditer(block)), len(block) + 1]
    for start, end in itertools.pairwise(starts):  # a thousand at most: counted above
        name, _, value = block[start : end - 1].partition(b":")
        if words and value.count(b"=?") > MAX_WORDS:
            return TOO_MANY_WORDS
        if params and name.strip().lower() in _PARAMETERED and _params(value) > MAX_PARAMS:
            return TOO_MANY_PARAMS
    return None


def _params(value: bytes) -> int:
    """The ";" that split `value` into parameters as the email package's `_parseparam` splits it: those
    after an even number of quotes, '\\"' not counted (a quoted value may hold any number of ";")."""
    if value.count(b";") <= MAX_PARAMS:
        return 0
    return b"".join(value.replace(b'\\"', b"").split(b'"')[::2]).count(b";")
