"""The signs that a text read under its Western label (windows-1252, ISO-8859-1) is Polish written in
windows-1250 or ISO-8859-2, for `gateway.smtp.charsets`, which then weighs the other reading: a
symbol where a letter stands ("Pawe³ bêdzie"), or letters that Polish makes and no French or Spanish
word has where they stand ("proszê sprawdziæ"); and the signs that a text read under a windows-1250
or ISO-8859-2 label is Polish written in the other (`misread_by_label`). Its own module: a table of
each language's spellings, apart from the decoding itself.
"""

from __future__ import annotations

import itertools
import re

# What a Western label shows for a Polish letter's byte in windows-1250 or ISO-8859-2 that is a symbol
# there, not a letter ("ł" 0xB3 "³", "ą" 0xB9/0xB1 "¹"/"±", "ż" 0xBF "¿", "ś" 0xB6 "¶"...), between
# two letters ("mi³y", "mo¿e"): a Western text has them only after one ("m³/h", "21C±0.5", "note¹",
# "JPY¥"), never "³" after three ("Pawe³", "zrobi³"; units are "m³", "cm³") or "¿" after two ("ju¿").
_MISREAD = re.compile(r"(?<=[^\W\d_])[£¥¯³¹¿±¶¼¦¬¡](?=[^\W\d_])|(?<=[^\W\d_]{3})³|(?<=[^\W\d_]{2})¿")

# Polish letters windows-1250 writes as Western ones where no French or Spanish word has them: "ę" as
# "ê" or "ć" as "æ" ending a word ("proszê sprawdziæ"), "ę" after "i" ("siê", "wiêcej"), "ń" as "ñ"
# ending a word or before a consonant ("dzieñ", "tañczy"; Spanish's "ñ" comes before a vowel), "ś" as
# "œ" before a consonant or ending a word ("wiadomoœæ", "coœ"; French's "cœur", "œuvre"). Portuguese's
# "você" ends with "ê" too: `charsets` asks for two different Polish letters made as well.
_MISREAD_LETTERS = re.compile(
    r"(?<=[^\W\d_])[êæñœ](?![^\W\d_])|(?<=[iI])ê|ñ(?=[bcdfghjklmnpqrstvwxzß])|œ(?=[bcdfghjklmnpqrstvwxzæ])"
)
_LETTERS_MIN = 2


# One Polish letter misread alone ("Pawe³ przyszed³", "S¹siad ma w¹sy", "Mo¿e ju¿"): a small letter's
# symbol twice where only it would stand: after a letter and before a small one, or "³" and "¿" ending
# a word as in `_MISREAD`. A capital after it is a Western text's ("mean±SD", "O¿Brien"), and so are
# the capitals' symbols ("Home¦About"), which a Polish text has between letters only in capitals. Not
# "±" (ISO-8859-2's "ą"): between small letters it is a Western text's too ("Messwerte a±b und c±d"
# went out as "aąb … cąd"); ISO-8859-2 Polish whose only misread letter is "ą" keeps its label.
# "³" ending a word is a footnote's or a power's mark in a Western text too ("Siehe Anhang³ und
# Vertrag³" went out as "Anhangł … Vertragł"): the group marks it, and it counts only in a Polish
# text (`_shares_only_polish`, `_POLISH_WORD`).
_MISREAD_SMALL = re.compile(
    r"(?<=[^\W\d_])[³¹¿¶¼](?=[a-zß-öø-ÿ])|(?<=[^\W\d_]{2})¿(?!\w)|(?<=[^\W\d_]{3})(³)(?!\w)"
)
_REPEATED_MIN = 2

# Words only Polish writes, read in the other (Polish) reading: common short words, and a word with
# "sz", "cz", "rz" or "dz" ("proszę", "przyszedł"), which French, Spanish and Portuguese never spell
# (German's "Herz" and Hungarian's "szó" come with umlauts and accents, `_shares_only_polish`).
_POLISH_WORD = re.compile(
    r"(?<![^\W\d_])(?:nie|jest|jestem|się|są|że|czy|jak|ale|tak|dla|od|przy|lub|albo|oraz|już|jutro"
    r"|dziś|mnie|może|tylko|bardzo|będę|proszę|był|była|było|były|w|z|ze|we)(?![^\W\d_])"
    r"|sz|cz|rz|dz",
    re.IGNORECASE,
)
# The non-ASCII letters both readings share that a Polish text has: "ó" alone. A Western text has
# "é", "á", "ü", "ç", "â", ... beside its misread-looking letters ("você … é", "für").
_SHARED_POLISH = frozenset("óÓ")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_SHARED_READ = 4096  # non-ASCII characters looked at, as `charsets` weighs its readings


def _shares_only_polish(text: str, other: str) -> bool:
    """Whether every non-ASCII letter the Western `text` and its Polish reading `other` share is one a
    Polish text has ("ó"): "für" or "é" beside "Anhang³" or "você" says the label is right."""
    for m in itertools.islice(_NON_ASCII.finditer(text), _SHARED_READ):
        ch = m.group()
        if ch == other[m.start()] and ch.isalpha() and ch not in _SHARED_POLISH:
            return False
    return True


def telling(text: str, hits: set[str], made: set[str], other: str) -> bool:
    """Whether a Western reading's misread symbols (`hits`) and the Polish letters the other reading
    (`other`) makes of what they disagree on (`made`) prove Polish: two different symbols, two different
    letters made, or one small letter's symbol standing twice where only it would (`_MISREAD_SMALL`;
    "³" ending a word only in a Polish text). Or, with no symbol and one letter made alone, that letter
    twice where only a misread Polish letter stands (`misread_letters`) and no letter of a Western
    text's beside it (`_shares_only_polish`): "ń" as "ñ" ending a word or before a consonant ("Gdañsk,
    Poznañ, Toruñ"; Spanish's comes before a vowel), any other beside a word only Polish writes
    ("Proszê o kontakt, bêdê jutro": Portuguese's "você" and "porquê" end with "ê" too)."""
    if len(hits) >= 2 or len(kinds := {ch.lower() for ch in made}) >= 2:
        return True
    strict = ends = 0
    for m in itertools.islice(_MISREAD_SMALL.finditer(text), 2 * _REPEATED_MIN):
        strict, ends = (strict, ends + 1) if m.group(1) else (strict + 1, ends)
    if strict >= _REPEATED_MIN:
        return True
    if strict + ends >= _REPEATED_MIN:
        return _shares_only_polish(text, other) and _POLISH_WORD.search(other) is not None
    if hits or not misread_letters(text) or not _shares_only_polish(text, other):
        return False
    return kinds == {"ń"} or _POLISH_WORD.search(other) is not None


def misread_symbols(text: str, most: int) -> set[str]:
    """The symbols standing where a Polish letter would (`_MISREAD`), among the first `most` found."""
    return {m.group() for m in itertools.islice(_MISREAD.finditer(text), most)}


def misread_letters(text: str) -> bool:
    """Whether two letters stand where only a misread Polish letter would (`_MISREAD_LETTERS`)."""
    return sum(1 for _ in itertools.islice(_MISREAD_LETTERS.finditer(text), _LETTERS_MIN)) >= _LETTERS_MIN


# Windows-1250 and ISO-8859-2 labels on each other's bytes. A label of the pair is weighed against the
# other only on its own reading's sign of them, not because the other reads as more Polish: ISO-8859-2's
# Czech and Slovene "š", "Š", "Ž" are windows-1250's "ą", "©", "®", and "Prosím, pošlete … Šárka" went
# out as "poąlete … ©árka". Under windows-1250, ISO-8859-2's "ś ą Ś Ź Ą" as a symbol against a letter with
# no digit beside ("¶cisł±"; "5 ±0,2" and "C±0.5" are symbols), or its "ź" as "Ľ" after a small letter
# ("weĽ"; at a word's start "Ľ" is Slovak's, "Ľubica"). Under ISO-8859-2, whose misreading of
# windows-1250's "ą" is Czech's "š", a letter: Polish letters both read alike ("Będš … także"), which
# no Czech, Slovak, Slovene or Croatian text has.
_MISREAD_BY_LABEL = {
    "cp1250": re.compile(r"(?<=[^\W\d_])[±¶¦¬ˇ](?!\d)|(?<!\d)[±¶¦¬ˇ](?=[^\W\d_])|(?<=[a-zß-öø-ÿąćęłńśźż])Ľ"),
    "iso8859-2": re.compile("[ęłńżĘŁŃŻ]"),
}


def misread_by_label(text: str, codec: str) -> bool:
    """Whether `text`, read as `codec` ("cp1250" or "iso8859-2"), shows the other's Polish misread."""
    pattern = _MISREAD_BY_LABEL.get(codec)
    return pattern is not None and pattern.search(text) is not None
