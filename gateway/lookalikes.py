"""Account names an admin reads as one another: `ACME` beside `acme`, `rivaI` (a capital I) beside
`rival`. Names are told apart exactly everywhere (the panel, billing files, [[account]] blocks), so
a second such account is most often a typo that splits one company's users, limits and bills: the
CLI and the panel say so once it is added (gateway/cli/accountnames.py, gateway/web/operator.py)."""

from __future__ import annotations

from collections.abc import Iterable

# Characters taken for one another in a list of names, after case is set aside: each as the one it
# passes for. A skeleton of the common few, not Unicode's confusables table.
_READ_ALIKE = str.maketrans({"i": "l", "1": "l", "|": "l", "o": "0"})


def skeleton(name: str) -> str:
    return name.casefold().translate(_READ_ALIKE)


def lookalike_note(existing: Iterable[str], name: str) -> str | None:
    """What the new account `name` is read as, or None: an existing account whose name differs from
    it in case only (said first) or in characters read alike (I, l and 1; O and 0)."""
    others = [n for n in existing if n != name]
    alike = [n for n in others if n.casefold() == name.casefold()]
    how = "differing in case only"
    if not alike:
        alike = [n for n in others if skeleton(n) == skeleton(name)]
        how = "read alike (I, l and 1, O and 0 are easily mistaken)"
    if not alike:
        return None
    return (
        f"account {alike[0]!r} exists, its name {how}: {name!r} is another account"
        " (its own users, limits and billing file)"
    )
