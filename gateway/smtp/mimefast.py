"""The email package's compat32 parse of a single-part mail, without its feed parser.

Nearly every mail to the gateway is one text part under a handful of clean header lines, and the
feed parser's line-by-line generator is most of what reading it costs. For such a mail the result
of the feed parser is simple to state: each header line `Name: value` (with its continuation
lines) becomes `(Name, value)` as compat32's `header_source_parse` makes it, and everything after
the first empty line is the payload, unchanged. `parse` builds exactly that `Message` when the mail
is of this kind and leaves every other mail (multipart, message/*, header lines the feed parser
would treat as defects or as a Unix From line, line ends other than LF in the headers) to the
feed parser, so the result is the same object structure in both cases.

Reading such a mail then asks `Message.get` for a header about fifteen times, and each call
lowercases every header name; `IndexedMessage` answers from a dict of the first field of each
name instead (the same value, through the same policy), dropped whenever a header changes.

The email package splits a header's parameters (`Content-Type: ...; charset=...`) by counting the
quotes before every ";" from the start of the value again: quadratic, so that one 80 KB
Content-Type full of quoted ";" took 5 s and a 1 MB one (the default size limit) about a quarter
of an hour. Values longer than `LONG_PARAMS` are split by `_parseparam_linear` instead, which
counts each stretch once and gives the same list; shorter ones, every real mail's, keep the
email package's own code.
"""

from __future__ import annotations

import email.message
import re
from email.message import Message
from email.parser import Parser
from email.policy import compat32
from typing import Any

import structlog

from gateway.smtp import headerbound, mimebound

log = structlog.get_logger(__name__)

_STR_PARSER = Parser(policy=compat32)
_REFUSED_EVENTS = {mimebound.TOO_DEEP: "intake.too_deep", mimebound.TOO_MANY_PARTS: "intake.too_many_parts"}
# The feed parser's header-line pattern without its "From " and continuation branches, and at
# least one character before the colon (a line starting with ':' is a defect there).
_FIELD = re.compile(r"[\041-\071\073-\176]+:")
_NOT_LF = re.compile(r"\r")  # the feed parser also ends lines at a lone CR
_BLANKS = (" ", "\t")
_MISSING = object()


class IndexedMessage(Message):
    """A compat32 `Message` whose `get` and `get_content_type` are dict look-ups; its headers may
    change as any message's."""

    # lowercased name → the first field's value as `get` returns it (a str: compat32 hands a
    # value with undecodable bytes out as a new Header each time, so those are fetched anew)
    _index: dict[str, Any] | None = None
    _raw: dict[str, Any] | None = None  # the first raw values of names the index holds otherwise
    _ctype: str | None = None

    def _fields(self) -> dict[str, Any]:
        index: dict[str, Any] = {}
        raw: dict[str, Any] = {}
        fetch = self.policy.header_fetch_parse
        # compat32 hands an ASCII str back as it is (only undecodable bytes make a Header)
        plain = self.policy is compat32
        for k, v in self._headers:  # type: ignore[attr-defined]
            name = k.lower()
            if name not in index:
                if plain and type(v) is str and v.isascii():
                    index[name] = v
                else:
                    value = fetch(k, v)
                    index[name] = value if isinstance(value, str) else (k, v)
                    raw[name] = v
        self._index, self._raw = index, raw
        return index

    def first_fields(self) -> dict[str, Any]:
        """`automail.first_headers` of this message (the first raw value of each lowered name, in the
        order of the fields), from the index, which holds nearly every value as it is raw: a pass of
        its own over the fields cost every mail 11 k instructions."""
        index = self._index if self._index is not None else self._fields()
        return {**index, **self._raw} if self._raw else dict(index)

    def get(self, name: str, failobj: Any = None) -> Any:
        found = (self._index or self._fields()).get(name.lower(), _MISSING)
        if found is _MISSING:
            return failobj
        return found if isinstance(found, str) else self.policy.header_fetch_parse(*found)

    def get_content_type(self) -> str:
        if self._ctype is None:
            self._ctype = super().get_content_type()
        return self._ctype

    def _changed(self) -> None:
        self._index = None
        self._ctype = None

    def set_default_type(self, ctype: str) -> None:
        self._ctype = None
        super().set_default_type(ctype)

    # Every change to the headers goes through one of these (set_param, set_type, del_param and
    # set_charset use them too); each drops the index.
    def __setitem__(self, name: str, val: Any) -> None:
        self._changed()
        super().__setitem__(name, val)

    def __delitem__(self, name: str) -> None:
        self._changed()
        super().__delitem__(name)

    def set_raw(self, name: str, value: Any) -> None:
        self._changed()
        super().set_raw(name, value)

    def add_header(self, _name: str, _value: Any, **_params: Any) -> None:
        self._changed()
        super().add_header(_name, _value, **_params)

    def replace_header(self, _name: str, _value: Any) -> None:
        self._changed()
        super().replace_header(_name, _value)

    def set_boundary(self, boundary: str) -> None:
        self._changed()
        super().set_boundary(boundary)


def first_headers(msg: Message) -> dict[str, str]:
    """First value of every header, name lowered; raw (undecoded) values are enough for the rules
    that read them (`gateway.smtp.automail`)."""
    if isinstance(msg, IndexedMessage):
        return msg.first_fields()
    out: dict[str, str] = {}
    for name, value in msg.raw_items():
        out.setdefault(name.lower(), value)
    return out


# The refusals of a mail's shape, before any parse (`shape_refusal`): what a session names in its log with
# the client's address, and what no later step may parse the mail again for (postmaster@, info@).
SHAPE_REFUSALS = frozenset({mimebound.TOO_MANY_PARTS, mimebound.TOO_DEEP}) | headerbound.REFUSALS


def shape_refusal(text: bytes) -> str | None:
    """The reply refusing a mail for its MIME structure or a header block, read from the raw bytes."""
    return mimebound.refusal(text) or headerbound.refusal(text)


def parse(text: bytes) -> Message:
    """What `BytesParser(policy=compat32).parsebytes(text)` returns, once `obs_names` has read the
    obsolete header names with white space before the colon; a structure past `mimebound`'s bounds
    or a header block past `headerbound`'s is refused (`IntakeRefused`) before anything is parsed."""
    if (refused := shape_refusal(text)) is not None:
        from gateway.smtp.intake import IntakeRefused  # here: intake imports this module

        log.info(_REFUSED_EVENTS.get(refused, "intake.header_refused"), size=len(text), reply=refused)
        raise IntakeRefused(refused)
    decoded = text.decode("ascii", "surrogateescape")
    msg = _simple(decoded)  # takes no such name: `_FIELD` does not match it
    return msg if msg is not None else _STR_PARSER.parsestr(obs_names(decoded))


# The feed parser's header lines (a field, a continuation, a Unix From line), and RFC 5322's obsolete
# field (4.5.3: `field-name *WSP ":"`), which it takes for the first line of the body.
_HEADER_LINE = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")
_OBS_FIELD = re.compile(r"([\041-\071\073-\176]+)[ \t]+:")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|\Z)")


def obs_names(text: str) -> str:
    """`text` with white space dropped before the colon of a header name in the mail's header
    block (`Precedence : bulk` is `Precedence: bulk`). The feed parser ended the header block at
    such a line: `Auto-Submitted : auto-replied` made a responder's answer an SMS, led by its own
    header lines, and every header below it was lost."""
    end = text.find("\n\n")
    head = text if end < 0 else text[:end]
    if " :" not in head and "\t:" not in head:
        return text  # nearly every mail: nothing to read line by line
    out: list[str] = []
    pos = 0
    while pos < len(text):
        line = _LINE.match(text, pos).group()  # type: ignore[union-attr]  # matches anywhere
        if line in ("\n", "\r\n", "\r"):
            break  # the end of the header block
        if _HEADER_LINE.match(line) is not None:
            out.append(line)
        elif (obs := _OBS_FIELD.match(line)) is not None:
            out.append(obs.group(1) + line[obs.end() - 1 :])
        else:
            break  # the body starts here, as the feed parser reads it
        pos += len(line)
    return "".join(out) + text[pos:]


def _simple(text: str) -> Message | None:
    end = text.find("\n\n")
    if end < 0 or text.startswith("\n"):
        return None  # no body separator, or no header at all: the feed parser decides
    block = text[: end + 1]
    if _NOT_LF.search(block):
        return None
    # Each field as compat32's header_source_parse makes it: the name before the first ":", the
    # value with the blanks after the colon dropped and its continuation lines joined by "\n" (the
    # line ends are LF alone here, and the last one is cut).
    # A folded field's lines are joined once it is complete: joined line by line, a header folded
    # into 250,000 lines (1 MB) took 7 s. Only folded fields keep a list of lines (most mails have
    # none): a list per field and a pass to join them cost every mail 2 % of its read.
    headers = _one_pass(block)
    if headers is None:
        headers = _fields(block)
        if headers is None:
            return None
    msg = IndexedMessage(policy=compat32)
    msg._headers = headers  # type: ignore[attr-defined]  # as set_raw() appends them one by one
    if msg.get_content_maintype() in ("multipart", "message"):
        return None
    msg.set_payload(text[end + 2 :])
    return msg


# Each field of a header block of unfolded fields, a line from its start, with its name and value as
# the loop of `_fields` splits it: the name up to the first colon, the value without the blanks after
# it. A line that is no field is none of these: counted, the fields tell whether the block is such.
_FIELDS = re.compile(r"^([\041-\071\073-\176]+):[ \t]*([^\n]*)\n", re.MULTILINE)


def _one_pass(block: str) -> list[tuple[str, str]] | None:
    """The fields of a block of unfolded fields alone (nearly every mail's), in one pass of the regex
    engine, which takes what the loop of `_fields` takes line by line (a third of `_simple`'s cost);
    None for any other block. Each field found is a whole line from its start, so as many fields as
    lines are every line a field: a pass of its own to tell that cost every mail 10 k instructions."""
    if "\n " in block or "\n\t" in block:
        return None
    found = _FIELDS.findall(block)
    return found if len(found) == block.count("\n") else None


def _fields(block: str) -> list[tuple[str, str]] | None:
    """The fields of a header block (LF line ends, its last line's LF included), folded ones
    joined; None for a block the feed parser must read (a line that is no field)."""
    headers: list[tuple[str, str]] = []
    folded: dict[int, list[str]] = {}  # index in `headers` -> the field's lines so far
    field = _FIELD.match
    for bare in block[:-1].split("\n"):  # not splitlines(): that also ends lines at \f, \v, \x1c…
        if bare[:1] in _BLANKS:
            if not headers:
                return None  # a continuation before any field: a defect the feed parser records
            last = len(headers) - 1
            if (lines := folded.get(last)) is None:
                folded[last] = [headers[last][1], bare]
            else:
                lines.append(bare)
            continue
        if field(bare) is None:
            return None  # an empty line cannot be here: the block ends at the first one
        name, value = bare.split(":", 1)
        headers.append((name, value.lstrip(" \t")))
    for at, lines in folded.items():
        headers[at] = (headers[at][0], "\n".join(lines))
    return headers


LONG_PARAMS = 2000
_parseparam_stdlib = email.message._parseparam  # type: ignore[attr-defined]


def _parseparam(value: Any) -> list[str]:
    value = str(value)  # as the email package's: the value may be a Header
    return _parseparam_stdlib(value) if len(value) <= LONG_PARAMS else _parseparam_linear(value)


def _parseparam_linear(value: str) -> list[str]:
    """The email package's `_parseparam`, in one pass: a ";" ends a parameter where the quotes
    before it in the parameter ('"' less '\\"') are even in number."""
    s = ";" + value
    n = len(s)
    plist: list[str] = []
    pos = 0
    while pos < n and s[pos] == ";":
        start = pos + 1
        end = s.find(";", start)
        counted, quotes = start, 0
        while end > start:
            quotes += s.count('"', counted, end) - s.count('\\"', counted, end)
            counted = end
            if quotes % 2 == 0:
                break
            end = s.find(";", end + 1)
        if end < 0:
            end = n
        f = s[start:end]
        if "=" in f:
            i = f.index("=")
            f = f[:i].strip().lower() + "=" + f[i + 1 :].strip()
        plist.append(f.strip())
        pos = end
    return plist


email.message._parseparam = _parseparam  # type: ignore[attr-defined]  # read there as a module global
