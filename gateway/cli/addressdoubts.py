"""Addresses `user add` and `account set --billing-to` take that are most likely typos.

An admin typing `bob@acme.exmaple` beside an account whose users are all @acme.example got no
word: the user's mail is then matched by nobody's relay and its answers bounce. A one-label domain
(`x@acme`, `billing@acme`) is no domain any mail server outside can deliver to, and was taken too.
The first is a note (a company may well have two domains); the second is refused.
"""

from __future__ import annotations

TYPO_DISTANCE = 2  # edits (a letter in, out, changed, or two swapped) that still read as a slip


def one_label_problem(address: str) -> str | None:
    """Why an address with a domain of one label (`x@acme`) is refused, or None."""
    domain = address.strip().rpartition("@")[2]
    if not domain or "." in domain or domain.startswith("["):
        return None
    return (
        f"{address!r}: its domain {domain!r} has no dot; a mail domain has at least two labels"
        f" ({domain}.example, {domain}.pl): write the whole domain"
    )


def distance(a: str, b: str) -> int:
    """Edits from a to b, two neighbouring letters swapped counting one (exmaple: example)."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            row.append(min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb)))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def typo_of(address: str, known: list[str]) -> str | None:
    """The domain among `known` addresses that `address`'s domain looks like a typo of, or None:
    one it is not itself, within TYPO_DISTANCE edits (one in a domain under 8 letters)."""
    domain = address.rpartition("@")[2].lower()
    domains = {k.rpartition("@")[2].lower() for k in known}
    if not domain or domain in domains:
        return None
    # Compared as it reads: xn--exmple-cua.com (exämple.com) is one letter from example.com, and as
    # written, 10 edits from it, it was taken with no word.
    read = unicode_form(domain) or domain
    # A short domain is a few edits from many others (acme.pl, acme.de): fewer edits count there.
    most = max(1, min(TYPO_DISTANCE, len(read) // 4))
    near = sorted((distance(read, d), d) for d in domains if distance(read, d) <= most)
    return near[0][1] if near else None


def unicode_form(domain: str) -> str | None:
    """How a domain in punycode (a label `xn--...`) reads, or None for any other."""
    if not any(label.startswith("xn--") for label in domain.split(".")):
        return None
    try:
        return domain.encode("ascii").decode("idna")
    except UnicodeError:
        return None
