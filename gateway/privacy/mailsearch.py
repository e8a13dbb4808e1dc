"""Whether a mail may name one phone's number, told from its digits before `naming.Forms.in_mail`
reads it.

`phone show|forget` reads every not-sent notice and bounce forward (`found.PhoneMails.named`): at
224,000 of them `in_mail` took 12 s, most of it decoding each mail's encoded words through the email
package (30 us a run, and a notice written in Polish has one in its subject). Nearly all of those
mails name other numbers, not this one, and this test says so from the mail's digits alone, every
other byte dropped (one pass in C): each form of the number `in_mail` finds (E.164, the grouped form
in whatever gaps, the national address) leaves its national significant number's digits in a row
there. It reads the digits as `in_mail` reads the mail: as they lie (a quoted-printable soft line
break between two digits is dropped with the rest), in its encoded words decoded straight from base64
or Q (not through the email package), and in its base64 parts decoded.

It never says no where `in_mail` says yes, and a mail it lets through is read by `in_mail` as before:
a word in a charset whose bytes below 0x80 may stand for other characters, or one it cannot decode,
lets the mail through.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re

import phonenumbers

from gateway.conversations.numbers import display
from gateway.privacy.naming import _BASE64_PART, national_forms

# Every byte but the ASCII digits, dropped by `bytes.translate`.
_NOT_DIGITS = bytes(b for b in range(256) if not 0x30 <= b <= 0x39)
# One RFC 2047 encoded word (as `naming._ENCODED_WORDS` reads its runs): charset, encoding, text.
_WORD = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
# A Q word's escape, as the email package decodes one (`email.quoprimime.header_decode`).
_Q_ESCAPE = re.compile(rb"=[a-fA-F0-9]{2}")
# What an escape leaves of the digits: the digit it stands for ("=36"), or nothing.
_Q_DIGITS = {
    b"=" + bytes([hi, lo]): bytes([int(bytes([hi, lo]), 16)]).translate(None, _NOT_DIGITS)
    for hi in b"0123456789abcdefABCDEF"
    for lo in b"0123456789abcdefABCDEF"
}
# Charsets in which a byte below 0x80 is always that ASCII character and no other character is
# written with one: a digit decoded is the same byte here as in the UTF-8 `in_mail` reads.
_ASCII_SAFE = re.compile(
    rb"(?:us-)?ascii|utf-?8|iso[-_]?8859-[0-9]{1,2}|latin-?[0-9]|(?:windows|cp)-?125[0-8]|koi8-[ru]", re.I
)


class NumberDigits:
    """The digits every form of one phone's number leaves in a row, once all else is dropped."""

    def __init__(self, number: str) -> None:
        e164 = number[1:]
        forms = [e164, _digits(display(number)), *national_forms(number)]
        national = e164
        with contextlib.suppress(phonenumbers.NumberParseException):
            national = phonenumbers.national_significant_number(phonenumbers.parse(number, None)) or e164
        # One search where the national number is in each form (it is, but for a number no plan
        # reads); else one for each form.
        shared = all(national in f for f in forms)
        anchors = [national.encode()] if shared else sorted({f.encode() for f in forms if f})
        self.anchor = anchors[0] if len(anchors) == 1 else None
        self.anchors = anchors
        self._safe: dict[bytes, bool] = {}

    def _held(self, text: bytes) -> bool:
        digits = text.translate(None, _NOT_DIGITS)
        if self.anchor is not None:
            return self.anchor in digits
        return any(a in digits for a in self.anchors)

    def may_name(self, content: bytes) -> bool:
        """False only for a mail `Forms.in_mail` finds no form of the number in."""
        if self._held(content):
            return True
        if b"=?" in content:
            decoded = self._words(content)
            if decoded is None or self._held(decoded):
                return True
        if b"ase64" not in content and b"ASE64" not in content:  # as `naming._readable` looks for it
            return False
        for block in _BASE64_PART.finditer(content.lower()):
            with contextlib.suppress(binascii.Error, ValueError):
                if self._held(base64.b64decode(content[block.start(1) : block.end(1)])):
                    return True
        return False

    def _words(self, content: bytes) -> bytes | None:
        """The mail's encoded words decoded to the bytes of their charsets and joined (a Q word's to its
        digits only), or None where the email package must read them (`in_mail`): a charset not
        ASCII-safe, a base64 error."""
        out = []
        for charset, encoding, text in _WORD.findall(content):
            safe = self._safe.get(charset)
            if safe is None:
                safe = self._safe[charset] = _ASCII_SAFE.fullmatch(charset) is not None
            if not safe:
                return None
            if encoding in b"qQ":
                # Only the digits count: an escape stands for one only as "=3" and a digit (rare), and
                # one for any other byte goes whole (its hexadecimal digits are not the text's).
                if b"=3" in text:
                    out.append(_Q_ESCAPE.sub(_q_digit, text))
                elif b"=" in text:
                    out.append(_Q_ESCAPE.sub(b"", text))
                else:
                    out.append(text)
                continue
            try:
                out.append(binascii.a2b_base64(text + b"==="[: (4 - len(text) % 4) % 4]))
            except binascii.Error:
                return None
        return b"".join(out)


def _q_digit(escape: re.Match[bytes]) -> bytes:
    return _Q_DIGITS[escape.group()]


def _digits(text: str) -> str:
    return "".join(c for c in text if "0" <= c <= "9")
