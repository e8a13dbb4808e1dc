"""The email package's compat32 parse of a single-part mail, without its feed parser.

Nearly every mail to the gateway is one text part under a handful of clean header lines, and the
feed parser's line-by-line generator is most of what reading it costs. For such a mail the result
of the feed parser is simple to state: each header line `Name: value` (with its continuation
lines) becomes `(Name, value)` as compat32's `header_source_parse` makes it, and everything after
the first empty line is the payload, unchanged. `parse` builds exactly that `Message` when the mail
is of this kind and leaves every other mail (multipart, message/*, header lines the feed parser
would treat as defects or as a Unix From line, line ends other than LF in the headers) to the
feed parser, so the result is the same object structure in both cases.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import Parser
from email.policy import compat32

_STR_PARSER = Parser(policy=compat32)
# The feed parser's header-line pattern without its "From " and continuation branches, and at
# least one character before the colon (a line starting with ':' is a defect there).
_FIELD = re.compile(r"[\041-\071\073-\176]+:")
_NOT_LF = re.compile(r"\r")  # the feed parser also ends lines at a lone CR


def parse(text: bytes) -> Message:
    """What `BytesParser(policy=compat32).parsebytes(text)` returns."""
    decoded = text.decode("ascii", "surrogateescape")
    msg = _simple(decoded)
    return msg if msg is not None else _STR_PARSER.parsestr(decoded)


def _simple(text: str) -> Message | None:
    end = text.find("\n\n")
    if end < 0 or text.startswith("\n"):
        return None  # no body separator, or no header at all: the feed parser decides
    block = text[: end + 1]
    if _NOT_LF.search(block):
        return None
    headers: list[tuple[str, str]] = []
    name = ""
    lines: list[str] = []
    for bare in block[:-1].split("\n"):  # not splitlines(): that also ends lines at \f, \v, \x1c…
        line = bare + "\n"
        if line[0] in " \t":
            if not name:
                return None  # a continuation before any field: a defect the feed parser records
            lines.append(line)
            continue
        if _FIELD.match(line) is None:
            return None
        if name:
            headers.append(_field(lines))
        name, lines = line[: line.index(":")], [line]
    if name:
        headers.append(_field(lines))
    msg = Message(policy=compat32)
    msg._headers = headers  # type: ignore[attr-defined]  # as set_raw() appends them one by one
    if msg.get_content_maintype() in ("multipart", "message"):
        return None
    msg.set_payload(text[end + 2 :])
    return msg


def _field(lines: list[str]) -> tuple[str, str]:
    """compat32's header_source_parse."""
    name, value = lines[0].split(":", 1)
    value = value.lstrip(" \t") + "".join(lines[1:])
    return name, value.rstrip("\r\n")
