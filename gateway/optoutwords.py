"""How a phone's SMS is read for opt-out and opt-in words (R-2.4): the whole text without case,
diacritics and what phones put around a word (`form`), and the sentences that may ask for no more
SMS without being an opt-out word (`may_be_optout`), which the answer's mail only points out.
"""

from __future__ import annotations

import re
import unicodedata

_UNMARKED = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D"})  # no decomposition


def form(text: str) -> str:
    """The MO as an opt-out word is compared: without case, diacritics, the punctuation, symbols,
    emoji and invisible characters phones put around it (`STOP…`, `„STOP”`, `STOP 🙏`, a BOM), and
    with inner spaces collapsed. Only the whole text counts: `nie STOP` or `STOPka` is no opt-out."""
    start, end = 0, len(text)
    while start < end and _around(text[start]):
        start += 1
    while end > start and _around(text[end - 1]):
        end -= 1
    return plain(" ".join(text[start:end].split()))


# Polish sentences that ask for no more SMS though they hold no opt-out word: a few, as plain
# words (`plain`), found anywhere in the text. Not "nie" alone: it answers a question.
_STOP_PHRASES = (
    ("nie", "pisac"),
    ("nie", "piszcie"),
    ("nie", "wysylac"),
    ("nie", "wysylajcie"),
)
# "Wypisać" is also to write out a prescription or an invoice ("Proszę wypisać receptę", "Wypiszcie
# fakturę"): it asks to be taken off a list only beside whom ("wypisz mnie", "proszę nas wypisać",
# "chcę się wypisać") or the list itself ("wypiszcie z listy"). Not "mi": "wypisz mi receptę".
_SIGN_OFF = frozenset({"wypisz", "wypiszcie", "wypisac", "wypisanie"})
_WHOM = frozenset({"mnie", "nas", "sie"})
_FROM_LIST = frozenset({"listy", "bazy", "subskrypcji", "newslettera"})


def _asks_off(said: list[str], i: int) -> bool:
    """Whether the "wypisać" at `i` takes someone off a list: whom beside it, or "z listy" after it."""
    beside = said[max(i - 1, 0) : i] + said[i + 1 : i + 2]
    after = said[i + 1 : i + 3]
    from_list = len(after) == 2 and after[0] == "z" and after[1] in _FROM_LIST
    return from_list or bool(_WHOM.intersection(beside))


def may_be_optout(form: str, words: set[str]) -> bool:
    """A text that may ask for no more SMS but is no opt-out word: one that starts with an opt-out
    word followed by more words ("Stop, prosze nie pisac", "STOP STOP"), or says one of
    `_STOP_PHRASES`, or "wypisać" as a list's (`_asks_off`). `form` is `form`'s: "stopien"
    or "stopka" starts with no word."""
    said = re.findall(r"\w+", form)
    for word in words:
        first = word.split()
        if len(said) > len(first) and said[: len(first)] == first:
            return True
    if any(w in _SIGN_OFF and _asks_off(said, i) for i, w in enumerate(said)):
        return True
    return any(said[i : i + len(p)] == list(p) for p in _STOP_PHRASES for i in range(len(said)))


def _around(c: str) -> bool:
    return c.isspace() or unicodedata.category(c)[0] in "PSZ" or unicodedata.category(c) == "Cf"


def plain(word: str) -> str:
    """A word without case or diacritics: a phone's STOP or REZYGNUJĘ, typed with or without them."""
    decomposed = unicodedata.normalize("NFKD", word.translate(_UNMARKED))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def word_problem(word: str) -> str | None:
    """Why a configured opt-out or opt-in word could misbehave, or None.

    An answer is compared by `form`, a configured word by `plain`: a word that `form` changes
    ("STOP!", "🛑", two spaces inside) can never equal an answer, and an empty one equals every
    answer made only of what `form` strips: a 👍 put the phone on the opt-out list."""
    seen = form(word)
    if not plain(word).strip():
        return (
            f"{word!r} is no word: an answer is compared without the punctuation, symbols and emoji"
            " around it, so this one would match an answer of only those (a 👍)"
        )
    if not seen:
        return (
            f"{word!r} can never match: an answer is compared without the punctuation, symbols and"
            " emoji around it; give a word"
        )
    if seen != plain(word):
        return (
            f"{word!r} can never match: an answer is compared without case, diacritics, the"
            f" punctuation, symbols and emoji around it and with single spaces, so write {seen.upper()!r}"
        )
    return None
