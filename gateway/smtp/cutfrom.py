"""An account's cut-from phrases (`smsgw account set --cut-from`): the text ends above the first line
that starts with one, however the mail's conversion to text wrapped it (R-1.3)."""

from __future__ import annotations

import re

# A rule drawn above a clause ("____", "-----", "=====") would be all the phone got of it.
_RULE_LINE = re.compile(r"^[-_=*~]{2,}$")


def phrase_key(phrase: str) -> str:
    """A cut-from phrase or a line as they are compared: case folded, every run of white space (a
    wrapped line's break, a non-breaking space from HTML) one space."""
    return " ".join(phrase.split()).casefold()


def cut_at_phrase(
    lines: list[str], phrases: tuple[str, ...], removed: list[str]
) -> tuple[list[str], str | None]:
    """The lines above the first that starts with one of `phrases`, and that phrase (None: no cut).

    A mail server's clause ("Treść tej wiadomości jest poufna…") is wrapped wherever the mail's
    conversion to text puts the line ends, so a line that holds only the start of a phrase is read
    on with the lines below it, as far as the phrase goes: the whole first line of a clause, as an
    end marker had to be, never matched one wrapped otherwise.
    """
    # One regular expression over the folded lines, a phrase's spaces matching a line end as well:
    # tried line by line against each phrase, a body of 50,000 lines "treść" against 20 phrases
    # took 1.3 s of the loop (0.2 s without phrases); the search runs in C.
    named = {key: phrase for phrase in phrases if (key := phrase_key(phrase))}
    if not named:
        return lines, None
    longest_first = sorted(named, key=len, reverse=True)
    alternatives = "|".join(re.escape(k).replace("\\ ", "[ \n]") for k in longest_first)
    folded = "\n".join(phrase_key(line) for line in lines)
    found = re.search(f"(?m)^(?:{alternatives})", folded)
    if found is None:
        return lines, None
    i = folded.count("\n", 0, found.start())
    phrase = named[found.group(0).replace("\n", " ")]
    above = lines[:i]
    while above and (not above[-1].strip() or _RULE_LINE.match(above[-1].strip())):
        above.pop()
    removed.append(f'text from "{phrase}…"')
    return above, phrase
