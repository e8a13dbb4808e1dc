"""Characters made plain for GSM 03.38: typographic punctuation always when that alone keeps a text
from GSM, Outlook's list bullets, and Polish letters for the accounts that ask (`transliterate`).
`smsc.encoding` decides when; this module only says what each character becomes."""

from __future__ import annotations

import re
import unicodedata

# Typographic punctuation that phones' mail apps write for plain ASCII ("smart punctuation": didn’t,
# “front desk”, –, …, no-break spaces before units). Made plain without any account setting when it is
# all that keeps a text from GSM 03.38: one such apostrophe would otherwise send the whole text as UCS-2,
# 70 characters per SMS instead of 160, and the plain character reads the same on every phone.
PLAIN_PUNCTUATION: dict[str, str] = {
    # An acute typed for an apostrophe ("It´s": not in GSM 03.38); a grave accent only between two
    # letters (`_GRAVE_APOSTROPHE`): around a word it quotes a command ("run `ls`"), kept as written.
    **dict.fromkeys("’‘‚´", "'"),
    **dict.fromkeys("“”„", '"'),
    # Dashes, non-breaking hyphen, minus, Outlook's • (a list in UCS-2 cost twice the parts); its · only
    # leading a list item or between spaces (`bullets`): in a word or a number it is no dash (2·3).
    **dict.fromkeys("–—\u2011\u2212•", "-"),
    "…": "...",
    **dict.fromkeys("\u00a0\u2007\u2009\u202f", " "),  # no-break, figure, thin, narrow no-break space
}
# Outlook's list item, a bullet and a run of (no-break) spaces, made plain is "- ", as a list is typed.
_BULLET_RUN = re.compile(r"^[·•][^\S\n]+", re.MULTILINE)
_DOT_BETWEEN = re.compile(r"(?<=[^\S\n])·(?=[^\S\n])")  # a separator, "Jan Kowalski · Kierownik": "-"
_GRAVE_APOSTROPHE = re.compile(r"(?<=[^\W\d_])`(?=[^\W\d_])")  # "Don`t", "it`s"
# Opt-in per account: keeps Polish text in GSM 03.38 (160/153 per part instead of 70/67). Every key is
# outside the GSM alphabet, so transliterating GSM text never changes it.
TRANSLITERATION: dict[str, str] = {
    **dict(zip("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ", "acelnoszzACELNOSZZ", strict=True)),
    **PLAIN_PUNCTUATION,
}

TRANSLIT = str.maketrans(TRANSLITERATION)
PLAIN = str.maketrans(PLAIN_PUNCTUATION)


def plain_punctuation(text: str, nfc: bool = True) -> str:
    """The text with PLAIN_PUNCTUATION and its bullets made plain (after NFC, as plan() sees it)."""
    text = unicodedata.normalize("NFC", text) if nfc else text
    text = _GRAVE_APOSTROPHE.sub("'", text) if "`" in text else text
    return (bullets(text) if "·" in text or "•" in text else text).translate(PLAIN)


def bullets(text: str) -> str:
    """A · or • leading a list item, with its run of spaces, as "- "; a · between spaces as "-". A · in
    a word or a number stays: it is not always punctuation (2·3, Catalan's "l·l")."""
    return _DOT_BETWEEN.sub("-", _BULLET_RUN.sub("- ", text))


def transliterate_text(text: str) -> str:
    """Apply TRANSLITERATION after NFC, so that decomposed input (a + U+0328) is caught as well."""
    return unicodedata.normalize("NFC", text).translate(TRANSLIT)
