"""Account names the billing files print alike: what a name may not hold so that none looks like
another (`gateway.adminrules.account_name_problem`), and an account made before that already does.

The billing files, their summary and its mail print a name with what does not print as a space, runs
of spaces as one and none at its ends (`billing_reports.render.printable`): `\\u200bdemo` (a
zero-width space), `acme\\u00ad` (a soft hyphen) and `Best\\u00a0Sp` (a no-break space) were
accounts of their own that read `demo`, `acme` and `Best Sp` there, beside the accounts of those very
names. A ZWNJ or ZWJ between two letters of a script it shapes (Persian, Sinhala, the Indic scripts)
is spelling, not a hidden character: taken, and told apart there as any name that does not print as
itself (with its account id after it; `Best Sp` beside `Best\\u00a0Sp` is refused).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

# Blanks that are letters or symbols to Unicode, the usual "invisible name" characters: the Hangul
# fillers (Lo) and the braille blank (So).
BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# The zero-width non-joiner and joiner, and the scripts (the first word of a character's Unicode name)
# whose letters they shape: Persian writes "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
# with a ZWNJ, Sinhala "\u0dc1\u0dca\u200d\u0dbb\u0dd3" (Sri) with a ZWJ, and a name without them
# is misspelt. Between Latin letters, or at either end, they show as nothing at all.
JOINERS = frozenset("\u200c\u200d")
JOINING_SCRIPTS = frozenset(
    "ARABIC SYRIAC NKO MONGOLIAN DEVANAGARI BENGALI GURMUKHI GUJARATI ORIYA TAMIL TELUGU KANNADA"
    " MALAYALAM SINHALA MYANMAR KHMER".split()
)


def _script(ch: str) -> str | None:
    """The script of a letter or a mark, as the first word of its Unicode name, or None for anything else."""
    if unicodedata.category(ch)[0] not in "LM":
        return None
    return unicodedata.name(ch, "").partition(" ")[0] or None


def shaping_joiner(name: str, at: int) -> bool:
    """`name[at]` is a ZWNJ or ZWJ between two letters (or marks) of one script it shapes: a part of
    the name's spelling, not a character that hides in it. The billing files print it as a space
    (`billing_reports.render.printable`), so a name written with one gets its account id after it
    there, and a name with a plain space in its place is another's print (`account_name_clash`)."""
    if name[at] not in JOINERS or not 0 < at < len(name) - 1:
        return False
    script = _script(name[at - 1])
    return script in JOINING_SCRIPTS and _script(name[at + 1]) == script


def unseen(name: str) -> str | None:
    """The first character of `name` that shows as nothing or as a plain space, described, or None."""
    for at, ch in enumerate(name):
        category = unicodedata.category(ch)
        if category == "Cf" and not shaping_joiner(name, at):
            where = " here; it is taken between two letters of a script it shapes" if ch in JOINERS else ""
            return f"U+{ord(ch):04X} (a format character, which shows as nothing{where})"
        if category == "Zs" and ch != " ":
            return f"U+{ord(ch):04X} (a space other than the plain one, which prints as one)"
        if ch in BLANKS:
            return f"U+{ord(ch):04X} (a blank filler, which shows as a space)"
    return None


def account_name_clash(existing: Iterable[str], name: str) -> str | None:
    """Why `name` cannot be added beside the accounts `existing`, or None: one of them prints as `name`
    does. New names hold nothing that does not print (`unseen`), but accounts made before may: `demo`
    beside a stored `\\u200bdemo` made two `demo` lines in the summary. Names differing in case only
    stay two accounts, as everywhere (`gateway.lookalikes` warns of them)."""
    from billing_reports.render import printable

    if (other := printed_alike(existing, name)) is None:
        return None
    return (
        f"account name {name!r} prints as {printable(name)!r} in the billing files and their summary, as"
        f" account {other!r} does (it holds a character that does not print): give another name"
    )


def printed_alike(existing: Iterable[str], name: str) -> str | None:
    """The first of `existing` (other than `name` itself) that the billing files print as `name`, or None."""
    from billing_reports.render import printable  # the billing files' own folding, not a copy of it

    shown = printable(name)
    return next((other for other in existing if other != name and printable(other) == shown), None)
