"""Invisible and odd characters of a mail's text, which cost SMS characters or force UCS-2 while the
phone shows nothing of them, and the composed form every comparison of the text expects
(gateway.smtp.charsets reads the text, `normalize` is applied to each text and subject it yields).
"""

from __future__ import annotations

import re
import unicodedata

# Invisible or odd whitespace that costs SMS characters: NBSP and its relatives become a space; BOM,
# zero-width space, soft hyphen, invisible math operators and C0 and C1 controls vanish; CR, NEL and
# Unicode line separators end lines. ZWJ and ZWNJ stay where they work (`_JOINERS`).
# A C1 control (kept by a strict UTF-8 reading, or left by the last fallback) shows as nothing or a box
# on a phone and forces UCS-2, halving what a part holds.
_TRANSLATE: dict[int, str | None] = {
    **{c: " " for c in (0xA0, 0x2007, 0x202F, 0x3000, *range(0x2000, 0x200B))},
    **{c: None for c in (0xFEFF, 0x200B, 0x00AD, 0x2060, *range(0x2061, 0x2065))},
    **{c: None for c in (0x7F, *range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x80, 0xA0))},
    **{c: "\n" for c in (0x0D, 0x85, 0x2028, 0x2029)},
}
# Direction marks, embeddings, overrides and isolates (LRM, RLM, ALM, LRE..RLO, LRI..PDI).
_BIDI = (0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_TRANSLATE_LTR = _TRANSLATE | dict.fromkeys(_BIDI)
_ODD = re.compile("[" + re.escape("".join(map(chr, _TRANSLATE_LTR))) + "]")
# Letters written right to left (Hebrew, Arabic, Syriac, Thaana, N'Ko, ... and presentation forms); not ALM.
_RTL = re.compile(
    "[\u0590-\u061b\u061d-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff\U0001e800-\U0001efff]"
)

# Joiners: ZWJ and ZWNJ build emoji sequences ("👨‍👩‍👧") and shape the letters of scripts that join
# (Persian, the Indic ones); CGJ keeps two combining marks in their order. Between Latin letters,
# digits, spaces or punctuation they change nothing a phone shows, yet each forces UCS-2 (a
# preheader's "&zwnj;" padding, a word processor's, pasted between two words): kept only beside an
# emoji or a letter or mark of a script other than Latin, a CGJ only before a combining mark.
_JOINERS = re.compile("[\u200c\u200d\u034f]+")
_CGJ = "\u034f"


def _joins(c: str) -> bool:
    """Whether a ZWJ or ZWNJ beside `c` may change how it shows."""
    if not c or c.isascii():
        return False
    category = unicodedata.category(c)
    if category in ("So", "Sk") or 0x1F000 <= ord(c) <= 0x1FAFF or c in "\ufe0e\ufe0f":
        return True  # emoji, their skin tones and presentation selectors
    return category[0] in "LM" and not unicodedata.name(c, "LATIN").startswith(("LATIN", "COMBINING"))


def _joiners(m: re.Match[str]) -> str:
    text, run = m.string, m.group()
    before = text[m.start() - 1] if m.start() else ""
    after = text[m.end()] if m.end() < len(text) else ""
    joined = _joins(before) or _joins(after)
    mark = bool(after) and unicodedata.category(after)[0] == "M"
    return "".join(c for c in run if (mark if c == _CGJ else joined))


def normalize(text: str) -> str:
    """Line ends to LF and odd whitespace to plain spaces (or nothing); tabs stay for `textclean.collapse`,
    which knows where they matter.

    Direction marks go as well unless the text has right-to-left letters: any one of them forces UCS-2
    (a 150-character text goes from one SMS to three), and mail programs and phone contacts paste
    them around numbers and names unseen. Where dropping one changes what the phone shows, and why
    that is accepted:
    - in Hebrew or Arabic text they decide on which side of a word a number, a bracket or a full stop
      is shown, so there they are kept (such text is UCS-2 anyway: they cost a character each, not
      the alphabet);
    - in text without right-to-left letters the left-to-right ones (LRM, LRE, LRO, LRI, PDF, PDI)
      change nothing; RLM, ALM and the right-to-left embedding, override and isolate can make the
      phone lay a line out from the right ("Hello!" shown as "!Hello") or, RLO, show a run backwards
      (the trick that makes "photo_gnp.exe" read "photo_exe.png"). Dropped, the phone shows the
      characters in the order they were typed: the text the sender wrote, not a layout accident or a
      disguise; the MO direction drops RLO for the same reason.

    Text is composed (NFC): mail written on a Mac arrives decomposed ("z" + U+0307 for "ż"), and the
    cutting rules, the account's cut-from phrases and every comparison below match composed letters,
    so "Z poważaniem" typed there was no signature and its disclaimer went to the phone.

    Joiners go where they join nothing (`_JOINERS`): one ZWNJ between two words made a Polish text
    UCS-2, and `normalize` runs before the alphabet is chosen.
    """
    text = text.replace("\r\n", "\n")
    if not text.isascii():
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        if _JOINERS.search(text):
            text = _JOINERS.sub(_joiners, text)
    if not _ODD.search(text):  # translate() is slow; rarely needed
        return text
    return text.translate(_TRANSLATE if _RTL.search(text) else _TRANSLATE_LTR)
