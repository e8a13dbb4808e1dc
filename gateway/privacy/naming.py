"""Finding one phone's number in a mail by what the mail says, and replacing it there.

Some mails name a phone with no row of it behind them (a not-sent notice, a bounce forwarded, the
record of an auto-reply): the erasure finds them by their bytes, in every form the gateway writes a
number (E.164, as a person writes it: "+48 601 123 456", and national as its address:
"601123456@"), through the encodings a mail may hide it in (quoted-printable, base64, a header's
encoded words), and in one naming other numbers too replaces the phone's number only, leaving the
mail's structure as it came. That is byte and MIME work with no database in it, half of what the
repository was: kept apart, the queries (`found`, `held`) and the erasure (`erasure`) read on their
own, and this reads without SQL around it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import quopri
import re
from email.errors import HeaderParseError
from email.header import Header, decode_header, make_header
from email.parser import BytesParser

import phonenumbers

from gateway import mailheaders
from gateway.conversations.numbers import display
from gateway.notify import set_text
from gateway.store.retrystart import ERASED  # the store's marker: its retry refuses such a text

# Between the groups of a number as a person writes it ("+48 601 123 456", "+1 201-555-0123"): a
# space or a dash, a header folded there, a quoted-printable soft line break.
_GAP = r"(?:[ \t-]|\r?\n[ \t]|=\r?\n)+"
# A phone number as the gateway's mails write one: E.164, or grouped as a person writes it.
_ANY_NUMBER = re.compile(rb"\+[0-9](?:(?:[ \t-]|\r?\n[ \t]|=\r?\n)?[0-9]){5,14}(?![0-9])")
_ERASED_BYTES = ERASED.encode()
# A run of RFC 2047 encoded words, folded or not ("=?utf-8?b?...?=\r\n =?utf-8?b?...?=").
_ENCODED_WORDS = re.compile(
    rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=(?:(?:\r?\n)?[ \t]+=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)*"
)
# A MIME part's body in quoted-printable: up to the next boundary (a line starting "--").
_QP_PART = re.compile(
    rb"content-transfer-encoding:[ \t]*quoted-printable[ \t]*\r?\n(?:[^\r\n]+\r?\n)*?\r?\n"
    rb"((?:(?!--)[^\r\n]*\r?\n)+)"
)
# A MIME part's body in base64: its header block ends at the empty line, its body at the first line
# that is not base64 (the next boundary).
_BASE64_PART = re.compile(
    rb"content-transfer-encoding:[ \t]*base64[ \t]*\r?\n(?:[^\r\n]+\r?\n)*?\r?\n((?:[a-z0-9+/=]+\r?\n)+)"
)


def _readable(content: bytes) -> list[bytes]:
    """The mail's bytes as its reader sees them: quoted-printable's soft line breaks joined (one may
    split a number), and each base64 part decoded (a bounce forwarded as a file). Read with two
    regular expressions, not the email package: its parser took 7 ms a forward, 7 s for a thousand."""
    seen = [content.replace(b"=\r\n", b"").replace(b"=\n", b"")]
    if b"=?" in content:  # a header's encoded words (a subject not in ASCII), decoded run by run
        seen += [_decoded_words(run.group()).encode() for run in _ENCODED_WORDS.finditer(content)]
    if b"base64" not in content and b"BASE64" not in content and b"Base64" not in content:
        return seen
    # Found in a lower-case copy (a pattern that ignores case is not searched for by its text),
    # decoded from the mail itself.
    for block in _BASE64_PART.finditer(content.lower()):
        with contextlib.suppress(binascii.Error, ValueError):
            seen.append(base64.b64decode(content[block.start(1) : block.end(1)]))  # line breaks skipped
    return seen


def _decoded_words(run: bytes) -> str:
    """A run of RFC 2047 encoded words as text: one word may end inside a number the next goes on with."""
    try:
        return str(make_header(decode_header(run.decode("ascii"))))
    except (UnicodeError, LookupError, ValueError, HeaderParseError):
        return ""


def _names(text: bytes, digits: bytes) -> bool:
    """Whether `text` names the number whose digits these are, as a number of its own (not the start
    or end of a longer one). A search for the digits first: a pattern with a look-behind is not
    searched for by its text, and took 2.5 s over a thousand forwards."""
    at = text.find(digits)
    while at >= 0:
        end = at + len(digits)
        if (at == 0 or not text[at - 1 : at].isdigit()) and not text[end : end + 1].isdigit():
            return True
        at = text.find(digits, at + 1)
    return False


def national_forms(number: str) -> list[str]:
    """The phone's national forms (with its country's trunk prefix too, where it has one): how an
    address of it is written ("601123456@"), and how the gateway's DSNs give it back (RCPT as given)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return []
    national = phonenumbers.national_significant_number(parsed)
    meta = phonenumbers.PhoneMetadata.metadata_for_region(
        phonenumbers.region_code_for_country_code(parsed.country_code)
    )
    forms = [national] + ([meta.national_prefix + national] if meta and meta.national_prefix else [])
    # Too short, a national number is some other figure's digits.
    return [f for f in dict.fromkeys(forms) if len(f) >= 6 and f != number[1:]]


def _number_source(number: str, soft: bool) -> str:
    """A pattern of the phone's number in each form the gateway writes it: E.164 (also without the
    "+"), as a person writes it (`display`: the subject of an answer mail, "SMS from +48 601 123
    456"), and national as its address's local part. `soft`: a quoted-printable soft line break
    may stand between any two characters (the mail's bytes as they lie in the outbox)."""
    between = r"(?:=\r?\n)?" if soft else ""

    def literal(form: str) -> str:
        return between.join(re.escape(c) for c in form)

    forms = [r"\+?" + literal(number[1:])]
    groups = [g for g in re.split(r"[ \-]", display(number)) if g]
    if len(groups) > 1:
        forms.append(_GAP.join(literal(g) for g in groups))
    source = rf"(?<![0-9])(?:{'|'.join(forms)})(?![0-9])"
    nationals = national_forms(number)
    if nationals:
        source += rf"|(?<![\w+.%-])(?:{'|'.join(literal(n) for n in nationals)})(?=@)"
    return source


def _number_pattern(number: str) -> re.Pattern[str]:
    return re.compile(_number_source(number, soft=False))


class Forms:
    """The phone's number as the mails write it, found fast: a search by the digits first (as the
    E.164 form holds them), then by the grouped form (a pattern that begins with its text, "+48"),
    then by the national address ("601123456@", by its text again)."""

    def __init__(self, number: str) -> None:
        self.digits = number[1:].encode()
        groups = [g for g in re.split(r"[ \-]", display(number)) if g]
        self.spaced = (
            re.compile(_GAP.encode().join(re.escape(g.encode()) for g in groups) + rb"(?![0-9])")
            if len(groups) > 1
            else None
        )
        self.local = [f"{n}@".encode() for n in national_forms(number)]
        self.text = _number_pattern(number)
        self.bytes = re.compile(_number_source(number, soft=True).encode())

    def named_in(self, text: bytes) -> bool:
        if _names(text, self.digits):
            return True
        if self.spaced is not None and self.spaced.search(text) is not None:
            return True
        return any(_local(text, at) for at in self.local)

    def in_mail(self, content: bytes) -> bool:
        return any(self.named_in(text) for text in _readable(content))

    def others(self, content: bytes) -> bool:
        """Whether the mail names a number besides the phone: read with the phone's taken out."""
        return any(_ANY_NUMBER.search(self.bytes.sub(b" ", text)) for text in _readable(content))

    def replaced(self, content: bytes) -> bytes:
        """The mail's bytes with the phone's number replaced by `ERASED` wherever it is written: in
        each base64 or quoted-printable part decoded and encoded again (its lines kept short),
        elsewhere as the bytes are. Its structure (headers, parts, boundaries) is untouched: a
        bounce forwarded carries the original as it came, which the email package cannot write
        back whole."""
        out: list[bytes] = []
        at = 0
        low = content.lower()
        blocks = [(m.span(1), True) for m in _BASE64_PART.finditer(low)] if b"base64" in low else []
        if b"quoted-printable" in low:
            blocks += [(m.span(1), False) for m in _QP_PART.finditer(low)]
        for (start, end), b64 in sorted(blocks):
            if start < at:
                continue
            out.append(self._sub(content[at:start]))
            out.append(self._recoded(content[start:end], b64))
            at = end
        out.append(self._sub(content[at:]))
        return b"".join(out)

    def _sub(self, text: bytes) -> bytes:
        """The number replaced as the bytes are, and in a header's encoded words decoded and encoded
        again (folded as the header was)."""
        if b"=?" in text:
            text = _ENCODED_WORDS.sub(self._rewritten_words, text)
        return self.bytes.sub(_ERASED_BYTES, text)

    def _rewritten_words(self, run: re.Match[bytes]) -> bytes:
        decoded = _decoded_words(run.group())
        changed = self.text.sub(ERASED, decoded)
        if not decoded or changed == decoded:
            return run.group()
        eol = b"\r\n" if b"\r\n" in run.group() else b"\n"
        return Header(changed, "utf-8").encode(linesep="\n").encode("ascii").replace(b"\n", eol)

    def _recoded(self, encoded: bytes, b64: bool) -> bytes:
        """A part's body decoded, the number replaced, and encoded again the same way."""
        try:
            decoded = base64.b64decode(encoded) if b64 else quopri.decodestring(encoded)
        except (binascii.Error, ValueError):
            return encoded
        changed = self._sub(decoded)
        if changed == decoded:
            return encoded
        eol = b"\r\n" if b"\r\n" in encoded else b"\n"
        if b64:
            return base64.encodebytes(changed).replace(b"\n", eol)
        again = quopri.encodestring(changed.replace(b"\r\n", b"\n"))
        return again.replace(b"\n", eol) + (
            b"" if again.endswith(b"\n") or not encoded.endswith(eol) else eol
        )


def _local(text: bytes, address: bytes) -> bool:
    """Whether `text` has `address` ("601123456@") not as the end of a longer number."""
    at = text.find(address)
    while at >= 0:
        if at == 0 or not (text[at - 1 : at].isalnum() or text[at - 1 : at] in b"+._%-"):
            return True
        at = text.find(address, at + 1)
    return False


def without_number(content: bytes, number: str) -> bytes:
    """A plain notice (`gateway.notify.notice`) with the phone's number replaced by `ERASED` in its
    subject and text, and the rest as it was: the sender's subject, the other numbers."""
    msg = BytesParser(policy=mailheaders.POLICY).parsebytes(content)
    pattern = _number_pattern(number)
    subject = msg.get("Subject")
    if subject is not None:
        msg.replace_header("Subject", pattern.sub(ERASED, str(subject)))
    body = msg.get_body(("plain",))
    if body is None:
        return ERASED.encode()
    set_text(body, pattern.sub(ERASED, body.get_content()))
    return msg.as_bytes()
