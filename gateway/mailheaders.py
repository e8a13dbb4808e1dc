"""Header values the gateway writes from user data, made safe in one place.

Every mail the gateway sends (bounces, confirmations, notices, answers) quotes something a user
or an SMSC wrote: a subject, the first words of a text, a Message-ID, an address, an error text.
Python's `email` refuses a header value with a line break in it (`ValueError`), and a raised
error inside an acceptance or a delivery report turns into a `451` or an SMSC retry that repeats
forever. So nothing from outside goes into a header except through these functions, which
never raise: line breaks and control characters become spaces, runs of white space collapse,
values are capped, and a Message-ID is either a valid `<id-left@id-right>` or left out.
An address whose domain alone is not ASCII is written with the domain in IDNA A-labels, here and in
the outbox's envelope (`ascii_address`), so that such a mail needs no SMTPUTF8.
"""

from __future__ import annotations

import re
import unicodedata
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address, AddressHeader, UnstructuredHeader
from email.message import Message
from email.policy import EmailPolicy
from typing import Any

from gateway.encodednames import address_header
from smsc.plainchars import transliterate_text

SUBJECT_MAX = 120  # characters; a subject longer than that is cut with an ellipsis
_MSGID_MAX = 250  # longer ids are not threading anyone's mail; leaving them out is safer
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_MSGID = re.compile(rf"{_DOT_ATOM}@(?:{_DOT_ATOM}|\[[!-Z^-~]*\])")  # RFC 5322 3.6.4, no folding
_PLAIN_ADDRESS = re.compile(rf"{_DOT_ATOM}@{_DOT_ATOM}")
_BRACKETED = re.compile(r"<([^<>]*)>")
_AROUND_SEPARATORS = re.compile(r"\s*([@.])\s*")  # obsolete syntax allows white space here (RFC 5322 4.5.4)
_SPACE = re.compile(r"\s")
_NO_RECIPIENT = "undisclosed-recipients:;"
_ENCODED_LINE_MAX = 76  # RFC 2047 2: a header line holding an encoded word; each word at most 75
_LINE_MAX = 998  # RFC 5322 2.1.1, for a line a word too long to fold leaves longer than 78
_DOMAIN_MAX = 253  # RFC 1035 2.3.4 (255 octets on the wire), without a final dot
# IDNA 2003 maps these away and IDNA 2008 keeps them: `faß.de` would be written as `fass.de`, another
# domain (UTS 46 calls them deviations).
_DEVIATIONS = frozenset("\u00df\u03c2\u200c\u200d")


class _WholeWordsPolicy(EmailPolicy):
    """`policy.default` with a folder of its own for unstructured headers (Subject, Thread-Topic,
    In-Reply-To, References), which CPython 3.11's folder writes wrong.

    It drops the space between two encoded words that meet at a fold (RFC 2047 6.2 makes readers
    ignore white space between adjacent encoded words): 3 % of Polish answer subjects read
    "pilnąpilną" in the user's mail client. It also doubles a space beside a word too long for a
    line, moves a whole value off the first line, and writes an id longer than a line (Outlook's,
    about 80 characters) in In-Reply-To as an encoded word, which no mail client threads by. A
    longer line limit only moves the fold (a subject of 500 characters, a Thread-Topic of 255 in
    three-byte characters still fold) and makes encoded words longer than RFC 2047 allows. So a
    value that is not plain ASCII is encoded whole, spaces included, by `email.header.Header`, cut
    between characters into words of at most 75 on lines of at most 76; a plain one is folded at
    its spaces, its first word on the first line.

    An address header whose address is not ASCII (`address(…, utf8=True)`) is written as it is, in
    UTF-8 (RFC 6532): the default folder writes such a local part as an encoded word, which no mail
    program reads as an address. One whose display names are not all ASCII is written by
    `encodednames.address_header`: the default folder wrote a long name (an answer's From naming
    the phone as the user's mail did) in encoded words over 75 characters, cut inside a word.
    """

    def _folded(self, name: str, value: Any) -> str | None:
        """The header as written, or None where `policy.default`'s folder is kept."""
        if self.utf8:
            return None
        if isinstance(value, AddressHeader):
            if not _encodes(str(value)):
                return None
            if all(a.addr_spec.isascii() for a in value.addresses):
                names = [a.display_name for a in value.addresses]
                if all(n.isascii() for n in names) or any(g.display_name is not None for g in value.groups):
                    return None  # ASCII names, or a group (none of ours has a name in it)
                return address_header(name, value.addresses, self.linesep)
            return f"{name}: {value}{self.linesep}"
        if not isinstance(value, UnstructuredHeader):
            return None
        text = str(value)
        if not _encodes(text):  # undecodable bytes kept as surrogates: the default writes them as 8bit
            return None
        if text.isascii() and text.isprintable() and "=?" not in text:
            lines = [f"{name}:"]
            for i, word in enumerate(text.split(" ")):
                if i and word and len(lines[-1]) + 1 + len(word) > self.max_line_length:
                    lines.append("")  # the space before the word begins the continuation line
                lines[-1] += f" {word}"
            if all(len(line) <= _LINE_MAX for line in lines):
                return self.linesep.join(lines) + self.linesep
        words = Header(text, "utf-8", maxlinelen=_ENCODED_LINE_MAX, header_name=name)
        return f"{name}: {words.encode(linesep=self.linesep)}{self.linesep}"

    def fold(self, name: str, value: Any) -> str:
        """`as_string`, and the text/rfc822-headers part of a bounce, fold as `as_bytes` does."""
        folded = self._folded(name, value)
        return super().fold(name, value) if folded is None else folded

    def fold_binary(self, name: str, value: Any) -> bytes:
        """What `as_bytes` writes: ASCII, so a 7-bit part stays 7-bit, but for a UTF-8 address."""
        folded = self._folded(name, value)
        return super().fold_binary(name, value) if folded is None else folded.encode("utf-8")


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# The policy of every mail the gateway builds (`EmailMessage(policy=mailheaders.POLICY)`).
POLICY = _WholeWordsPolicy()


# What a body drops: C0 and C1 controls but TAB and LF (a phone's BEL, VT or ESC showed as =07, =0B,
# =1B), and the bidi embeddings, overrides and isolates, with which a phone's SMS turned the text and
# the user's quote below it around in a mail client. The marks U+200E/U+200F only set direction.
_BODY_DROPS = dict.fromkeys(
    [
        *range(0x00, 0x09),
        *range(0x0B, 0x20),
        *range(0x7F, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
)


def _encodable(value: object) -> str:
    """Lone surrogates (left by undecodable bytes) cannot be encoded as UTF-8; NUL is refused by
    many mail servers."""
    return str(value).encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def body(value: object) -> str:
    """Text for a mail body: anything a `str` can hold, minus what no encoder can write and the
    controls that would garble it in a mail client. Line breaks and tabs stay: a body is allowed them.
    """
    s = _encodable(value).replace("\r\n", "\n").replace("\r", "\n")
    return s.translate(_BODY_DROPS)


def text(value: object, limit: int = SUBJECT_MAX) -> str:
    """An unstructured header value (Subject, a quoted name): one line, printable, at most `limit`."""
    if type(value) is str and value.isascii() and value.isprintable():
        s = " ".join(value.split())  # what the loop below makes of it, without a look-up a character
    else:
        chars = []
        for c in _encodable(value):
            if c.isspace() or unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp"):
                chars.append(" ")
            else:
                chars.append(c)
        s = " ".join("".join(chars).split())
    if len(s) > limit:
        s = s[: max(limit - 1, 0)].rstrip() + "…"
    # The email package decodes RFC 2047 encoded words in a value it is given, line breaks and
    # all: an 11-character SMS sender such as `=??q?=0AB?=` ended the header block. A word joiner
    # (invisible) after the `=` leaves the text as shown but no longer an encoded word.
    return s.replace("=?", "=\u2060?")


def reply_line(line: str) -> str:
    """An SMTP reply line that quotes stored text (an account's name, a suspension reason), made
    ASCII on one line: Polish letters lose their marks ("Zaległa" → "Zalegla"), other non-ASCII
    characters become "?", line breaks and controls spaces. Without SMTPUTF8 a reply is ASCII; one
    that was not raised while being written and the client got a 451 to retry for days; a CR LF in
    a reason wrote a second reply the client took for the answer to its next command."""
    plain = unicodedata.normalize("NFKD", transliterate_text(line))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    plain = "".join(c if c.isprintable() else " " for c in plain)
    return plain.encode("ascii", "replace").decode("ascii")


def ascii_text(value: object, limit: int = SUBJECT_MAX) -> str:
    """`text` for a field that must stay plain ASCII (a DSN's Diagnostic-Code, RFC 3464).

    Non-ASCII characters become `?`, so the word joiner `text` puts after `=` would make `=?` an
    encoded word again, and so would `=` followed by any non-ASCII character: once the field is
    ASCII, every `=?` is parted by a space.
    """
    plain = text(value, limit).encode("ascii", "replace").decode("ascii")
    return plain.replace("=?", "= ?")


def ascii_exact(value: object, limit: int) -> str:
    """`ascii_text` for a token a reader must get back as it was sent (a DSN's Original-Envelope-Id,
    RFC 3464 2.2.1): kept as it is, runs of spaces included, when it is one line of printable ASCII
    within `limit` that no reader would decode as an RFC 2047 word (what `dsnparams` lets in at MAIL
    and RCPT); anything else (a row from before those checks) goes through `ascii_text`."""
    s = str(value)
    if len(s) <= limit and all(" " <= c <= "~" for c in s) and "=?" not in s:
        return s
    return ascii_text(s, limit=limit)


def msgid_token(value: str | None) -> str | None:
    """The id inside a Message-ID / In-Reply-To value (without `<>`), or None if it is not valid.

    Folding is undone first (a line break and the white space after it), so an id folded over two
    lines is read whole when the folding sits where the obsolete syntax allows it, and is left out
    otherwise rather than written back broken.
    """
    if not value:
        return None
    unfolded = str(value).replace("\r", "").replace("\n", "")
    m = _BRACKETED.search(unfolded)
    candidate = (m.group(1) if m else unfolded).strip()
    if _SPACE.search(candidate):  # the substitution costs more than the rest; ids rarely need it
        candidate = _AROUND_SEPARATORS.sub(r"\1", candidate)
    if len(candidate) > _MSGID_MAX or not _MSGID.fullmatch(candidate):
        return None
    if "=?" in candidate:
        # Valid atext, but the email package decodes an encoded word in In-Reply-To/References
        # when it writes them: `<=?utf-8?b?DQpCY2M6…?=@x>` put a Bcc header and a body of its own
        # into the reply mail. No mail program makes such an id; it is left out.
        return None
    return candidate


def msgid(value: str | None) -> str | None:
    """`<id>` ready for In-Reply-To / References, or None when the value cannot be made valid."""
    token = msgid_token(value)
    return f"<{token}>" if token else None


def address(value: str | None, *, utf8: bool = False) -> str:
    """A single address for To/Cc; a value that is not one becomes an empty group.

    The envelope still decides where the mail goes; the header only has to be well formed. A domain
    that is not ASCII is written in A-labels (`jan@xn--w-uga1v8h.pl`): the header stays ASCII, and
    the outbox sends such a mail without SMTPUTF8. A local part that is not ASCII has no ASCII form:
    with `utf8` (the To of a mail to that very address, which goes with SMTPUTF8 anyway) it is
    written as it is, in UTF-8 (RFC 6532); without it (a bounce's quoted headers, a Final-Recipient,
    ASCII by their RFCs) it becomes the empty group.
    """
    s = text(value or "", limit=320)
    if _PLAIN_ADDRESS.fullmatch(s):
        return s  # as `_addr_spec` writes a dot-atom on both sides of the @, without the parse
    if not s or " " in s or "@" not in s:
        return _NO_RECIPIENT
    spec = _addr_spec(s)
    if spec is None:
        return _NO_RECIPIENT
    plain = ascii_address(spec)
    if plain is not None:
        return plain
    return spec if utf8 else _NO_RECIPIENT


def recipient(msg: Message, value: str | None) -> str:
    """The To of a mail to the address `value` itself: `address(value, utf8=True)`, as `msg` writes it.

    Such a mail goes with SMTPUTF8 when the address has no ASCII form, so its To may be UTF-8.
    `POLICY` writes a UTF-8 address as it is; compat32 (a DSN's) would write an encoded word, but
    writes a value of undecodable bytes as they are, so it is given the address's UTF-8 bytes so.
    """
    to = address(value, utf8=True)
    if to.isascii() or isinstance(msg.policy, EmailPolicy):
        return to
    return to.encode("utf-8").decode("ascii", "surrogateescape")


def _addr_spec(s: str) -> str | None:
    """`s` as an addr-spec, or None when it is none.

    The email package refuses a local part that is not ASCII; RFC 6532 lets any non-ASCII character
    stand where a letter may. So the syntax is checked with a letter in place of each, and a value
    the package would have written otherwise (quoted, say) is left out rather than guessed at.
    """
    stand_in = "".join(c if c.isascii() else "a" for c in s)
    try:
        addr = Address(addr_spec=stand_in)
    except (ValueError, IndexError, TypeError, HeaderParseError):  # headerregistry raises these
        return None
    if not addr.username or not addr.domain:
        return None
    if s.isascii():
        return addr.addr_spec
    return s if addr.addr_spec == stand_in else None


def ascii_domain(domain: str) -> str | None:
    """The domain in IDNA A-labels (`żółw.pl` → `xn--w-uga1v8h.pl`, RFC 5890), or None when it has
    none here.

    Python's own codec is IDNA 2003: the `idna` package (IDNA 2008) is no dependency of the daemon.
    The two write the same A-labels for a domain of letters, but for the four deviation characters,
    which IDNA 2003 maps to other letters or drops: a domain with one of them has no A-label here.
    """
    if domain.isascii():
        return domain
    if not _DEVIATIONS.isdisjoint(domain):
        return None
    try:
        encoded = domain.encode("idna").decode("ascii")
    except UnicodeError:  # an empty or too long label, a character IDNA prohibits
        return None
    return encoded if len(encoded.rstrip(".")) <= _DOMAIN_MAX else None


def ascii_address(value: str) -> str | None:
    """`local@domain` as a mail without SMTPUTF8 can carry it: as it is when ASCII, with the domain
    in A-labels when only the domain is not ASCII, None when the local part is not ASCII or the
    domain has no A-label form."""
    if value.isascii():
        return value
    local, at, domain = value.rpartition("@")
    if not at or not local.isascii():
        return None
    plain_domain = ascii_domain(domain)
    return None if plain_domain is None else f"{local}@{plain_domain}"


def is_plain_address(value: str) -> bool:
    """A bare `user@domain` that goes into a header and an envelope unchanged (no display name, no
    line break, ASCII): what logins and billing or notice addresses must be when an admin sets them,
    in the panel or with the CLI."""
    s = value.strip()
    return bool(s) and address(s) == s
