"""Account names the billing files print alike: what a name may not hold so that none looks like
another (`gateway.adminrules.account_name_problem`), and an account made before that already does.

The billing files, their summary and its mail print a name with what does not print dropped
(`billing_reports.render.printable`): `\\u200bdemo` (a zero-width space), `acme\\u00ad` (a soft
hyphen) and `Best\\u00a0Sp` (a no-break space) were accounts of their own that read `demo`, `acme`
and `Best Sp` there, beside the accounts of those very names.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

# Blanks that are letters or symbols to Unicode, the usual "invisible name" characters: the Hangul
# fillers (Lo) and the braille blank (So).
BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def unseen(name: str) -> str | None:
    """The first character of `name` that shows as nothing or as a plain space, described, or None."""
    for ch in name:
        category = unicodedata.category(ch)
        if category == "Cf":
            return f"U+{ord(ch):04X} (a format character, which shows as nothing)"
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
    from billing_reports.render import printable  # the billing files' own folding, not a copy of it

    shown = printable(name)
    for other in existing:
        if other != name and printable(other) == shown:
            return (
                f"account name {name!r} prints as {shown!r} in the billing files and their summary, as"
                f" account {other!r} does (it holds a character that does not print): give another name"
            )
    return None
