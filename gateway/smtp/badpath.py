"""Why a MAIL or RCPT path could not be read, for its `553 5.1.3`.

aiosmtpd answers every path its grammar cannot read with `553 5.1.3 Error: malformed address`:
`<@>`, `<a@b@c>` and `<[=@sms.example.com>` alike, and the person who typed one into a form or a
script's setting is left to guess what is wrong. The gateway's other address refusals name the
address and what is wrong with it; so does this, from the path's shape as RFC 5321 4.1.2 writes it
(the grammar says only where it stopped, in words no sender reads).
"""

from __future__ import annotations

import re
import unicodedata

# A dot-atom's characters (RFC 5322 3.2.3, and UTF-8 ones: RFC 6531); a local part holding any
# other is written in quotes.
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]|[^\x00-\x7f]")
# A domain: dot-separated labels of letters, digits and hyphens (none at a label's ends), or an
# address literal in brackets. UTF-8 labels pass (SMTPUTF8); the grammar read them already.
_LABEL = re.compile(r"(?!-)[^\s.@\[\]()<>,;:\\\"]{1,63}(?<!-)")
_LITERAL = re.compile(r"\[[^\[\]\\\s]+\]")
SHOWN_MAX = 64  # of the path echoed in the reply: a client's line, not a page of it


def refusal(arg: str, local_part_limit: int = 0) -> str:
    """The `553 5.1.3` for a path argument (`<...>` and its parameters, or a bare address) that does
    not parse, naming the path and its fault."""
    text = arg.strip()
    if text.startswith("<<"):  # a script's template that adds <> to an address written with them
        inner = text[2:].partition(">")[0]
        return _said(inner, f"it is in angle brackets twice: write <{_shown(inner)}>")
    if text.startswith("<"):
        end = text.find(">")
        if end < 0:
            return _said(text[1:], "its < has no closing >")
        path = text[1:end]
    else:
        path = text.split(None, 1)[0] if text else ""
    return _said(path, _fault(path, local_part_limit))


def _fault(path: str, local_part_limit: int) -> str:
    quoted = path.startswith('"')
    if unclosed_quote(path) and quoted:
        return 'its quoted local part has no closing ": an address is "local part"@domain'
    if unclosed_quote(path):  # `ab"c@x.com`: no quoted part opened, a quote typed into the address
        return 'a stray " in the address: a local part is quoted whole ("local part"@domain) or not at all'
    local, at, domain = path.rpartition("@")
    if not at and (alike := next((c for c in path if unicodedata.normalize("NFKC", c) == "@"), None)):
        # An East Asian keyboard's full-width ＠: a reply to a client that did not ask for SMTPUTF8
        # is ASCII, where the echo shows it as @ (`mailheaders.reply_line`); the words say what it is.
        name = unicodedata.name(alike, "a look-alike").lower()
        return f"its @ is a look-alike, the {name} (U+{ord(alike):04X}): type the plain @"
    if not at:
        return "it has no @: an address is local-part@domain"
    if not quoted and "@" in local:
        return "it has more than one @ (a local part holding one is written in quotes)"
    if not local:
        return "nothing before the @"
    if not domain:
        return "no domain after the @"
    if local_part_limit and len(local) > local_part_limit:
        return f"its local part is longer than {local_part_limit} characters"
    if not quoted:
        odd = next((c for c in local if not _ATEXT.fullmatch(c) or not c.isprintable()), None)
        if odd is not None:
            return f"its local part holds {_char(odd)}, which only a quoted local part may hold"
        if local.startswith(".") or local.endswith(".") or ".." in local:
            return "its local part has a dot at its start or end, or two in a row (quote it)"
    if not _LITERAL.fullmatch(domain) and not all(_LABEL.fullmatch(label) for label in domain.split(".")):
        return f"its domain {_shown(domain)} is not a host name"
    return "it is not local-part@domain as RFC 5321 writes it"


def unclosed_quote(text: str) -> bool:
    """Whether a `"` in `text` opens a quoted string that never closes (a backslash in one quotes
    the next character, RFC 5321 4.1.2's quoted-pair)."""
    quoted = escaped = False
    for c in text:
        if escaped:
            escaped = False
        elif quoted and c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
    return quoted


def _char(c: str) -> str:
    return repr(c) if c.isprintable() and c != " " else f"U+{ord(c):04X}"


def _shown(text: str) -> str:
    """The client's text as a reply may carry it: no control characters, and not too long."""
    shown = "".join(c if c.isprintable() else "?" for c in text)
    return shown if len(shown) <= SHOWN_MAX else shown[: SHOWN_MAX - 3] + "..."


def _said(path: str, why: str) -> str:
    return f"553 5.1.3 <{_shown(path)}>: Address not valid: {why}"
