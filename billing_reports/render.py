"""The billing file's layout (layout 1): pure, from a header and a stream of lines to bytes.

UTF-8, tab-separated, one record per line, `\\n` line ends. A header block of `#` lines names the
account, the month, its bounds in local time and the time zone; nothing in it depends on when the
file was made, so rendering the same rows again gives the same bytes. Then a column header, one
line per SMS in time order, the totals (per user, per kind, per premium number, all), and last an
`end` line with the number of SMS lines and the SHA-256 of every byte before it: a file cut short
has no `end` line or one that does not match. The README documents every column.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from billing_reports.monthly import KINDS, MT, PREMIUM_ANSWER, PREMIUM_MO, STATUSES, Line, Month

LAYOUT = 1
COLUMNS = (
    "date",
    "time",
    "kind",
    "user_or_phone",
    "from",
    "to",
    "parts",
    "status",
    "reason",
    "price_pln",
    "commission_pln",
)
TOTAL_COLUMNS = (
    "total",
    "group",
    "key",
    "sms",
    "parts",
    *STATUSES,
    "price_pln",
    "commission_pln",
)
_CHUNK = 2000  # lines per write
USER_KINDS = (MT, PREMIUM_ANSWER)  # the kinds whose `user_or_phone` is a user, totalled per user


def pln(grosze: int | None) -> str:
    """Integer grosze as PLN with two decimals, exactly (no float on the way)."""
    if grosze is None:
        return ""
    sign = "-" if grosze < 0 else ""
    g = abs(grosze)
    return f"{sign}{g // 100}.{g % 100:02d}"


def clean(value: object) -> str:
    """A field: no tab, line break or other control character may split or garble a record, and
    none runs as a formula in the spreadsheet the file is opened in, nor opens a quoted field
    there (`inert`)."""
    return inert(printable(value))


def printable(value: object) -> str:
    """A field's text on one line: a control character or line break becomes a space (runs of
    white space one), so that none splits or garbles a record."""
    s = str(value)
    if not s.isprintable():
        s = " ".join("".join(c if c.isprintable() else " " for c in s).split())
    return s


def shown_account(account: str, account_id: int | None) -> str:
    """An account's name as its file's header and the summary print it: `printable`, and where that is
    not the name itself (it held a character that does not print: a zero-width space, a soft hyphen, a
    no-break space, made before new names were refused them) `~<account id>` after it, as its
    attachment's name has (`billing_reports.attachments`). `\u200bdemo` was printed `demo`, as the
    account `demo` beside it was: two lines of the summary named alike, and two files headed alike."""
    name = printable(account)
    return name if name == account or account_id is None else f"{name}~{account_id}"


# What a spreadsheet takes for a number, or for nothing it would run: a phone `+48601123456`, an
# amount `-1.00`, the `-` of a field left empty.
_NUMERIC = re.compile(r"[+-]?[0-9 .]*")
_FORMULA_STARTS = frozenset("=+-@")
_QUOTE = '"'


def inert(s: str) -> str:
    """A field that starts like a formula (`=`, `+`, `-`, `@`) gets a leading apostrophe, which the
    spreadsheet shows as text and hides, as the panel's CSV export does (OWASP's CSV injection
    advice): a user `=cmd|'/Ccalc'!A0@acme.pl`, which the ACL takes as an address, ran as one.
    Numbers stay as they are: phone numbers and amounts are read, not run.

    So does a field that starts with `"`: the file is not quoted, but a spreadsheet's import (and
    Python's csv `excel-tab`) reads such a field as quoted up to the next `"`, tabs and line ends
    included. An account `"Best Sp. z o.o.` took the lines after it into one cell (the summary lost
    whole accounts) and a user `"anna;nowak"@zolw.pl` lost its quotes. A `"` inside a field is
    read as written."""
    if s[:1] == _QUOTE or (s[:1] in _FORMULA_STARTS and _NUMERIC.fullmatch(s) is None):
        return f"'{s}"
    return s


@dataclass(frozen=True)
class Header:
    account: str
    month: Month
    tz: ZoneInfo
    notes: tuple[str, ...] = ()  # e.g. detail rows removed by the retention purge
    accepted_parts: int | None = None  # the usage counter (never purged); None: not shown
    account_id: int | None = None  # beside a name that does not print as itself (`shown_account`)


@dataclass
class Sum:
    sms: int = 0
    parts: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    price: int = 0
    commission: int = 0

    def add(self, line: Line) -> None:
        self.add_counts(line.status, line.sms, line.parts, line.price or 0, line.commission or 0)

    def add_counts(self, status: str, sms: int, parts: int, price: int, commission: int) -> None:
        self.sms += sms
        self.parts += parts
        self.by_status[status] += sms
        self.price += price
        self.commission += commission


@dataclass
class Totals:
    by_user: dict[str, Sum] = field(default_factory=dict)
    by_kind: dict[str, Sum] = field(default_factory=lambda: {k: Sum() for k in KINDS})
    by_number: dict[str, Sum] = field(default_factory=dict)
    all: Sum = field(default_factory=Sum)
    sha256: str = ""

    def add_group(self, kind: str, party: str, number: str | None, status: str, *counts: int) -> None:
        """Count `counts` (sms, parts, price, commission) of one kind, party, number and status."""
        self.all.add_counts(status, *counts)
        self.by_kind[kind].add_counts(status, *counts)
        if kind in USER_KINDS:
            self.by_user.setdefault(party, Sum()).add_counts(status, *counts)
        if number is not None and kind == PREMIUM_MO:
            # The paid SMS a number received, as the mobile operator's statement and `premium stats`
            # count them: the free answer sent from it counted as a third SMS beside two votes.
            self.by_number.setdefault(number, Sum()).add_counts(status, *counts)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold_user(user: str) -> str:
    """A user as the gateway tells users apart: ASCII letters in either case are one (the ACL's
    `COLLATE NOCASE`, the lower case of a removed user's address)."""
    return user.translate(_ASCII_LOWER)


def user_spellings(groups: dict[tuple[str, str, str | None, str], list[int]]) -> dict[str, str]:
    """Each user's total goes by the spelling of their latest line. A user removed and added again
    in other case (`piotr.nowak@` listed in lower case as a removed user, `Piotr.Nowak@` as the ACL
    now has them) is one person, and was totalled as two."""
    latest: dict[str, tuple[int, str]] = {}
    for (kind, party, _number, _status), g in groups.items():
        if kind in USER_KINDS:
            user = fold_user(party)
            if user not in latest or g[4] > latest[user][0]:
                latest[user] = (g[4], party)
    return {user: party for user, (_last, party) in latest.items()}


def group_key(line: Line) -> tuple[str, str, str | None, str]:
    """The group a line is summed in: its party only where a total is per party (a user's). A
    premium MO's or a reply's party is the phone, which no total reads: keyed by it, a month of a
    TV vote held one group per voting phone (900,001 phones: 444 MB at the daemon's 00:05 run,
    most of it kept after), where the month's lines are otherwise streamed in flat memory."""
    return (line.kind, line.party if line.kind in USER_KINDS else "", line.number, line.status)


class Rendering:
    """Iterate `chunks()` for the bytes; `totals` is complete once the iteration ended."""

    def __init__(
        self, header: Header, lines: Iterable[Line], clock_cache: dict[int, tuple[str, int]] | None = None
    ) -> None:
        self.header = header
        self.lines = lines
        self.totals = Totals()
        # Sums per (kind, user, premium number, status), and the number of the group's last line;
        # the totals are derived from them at the end (`group_key`).
        self.groups: dict[tuple[str, str, str | None, str], list[int]] = {}
        # Local date and hour per UTC quarter hour: share one between the accounts of a month.
        self.clock_cache = {} if clock_cache is None else clock_cache

    def chunks(self) -> Iterator[bytes]:
        digest = hashlib.sha256()

        def out(text: str) -> bytes:
            data = text.encode("utf-8")
            digest.update(data)
            return data

        yield out(self._head())
        buf: list[str] = []
        tz = self.header.tz
        groups = self.groups
        block, prefix, minute0 = -1, "", 0
        cache = self.clock_cache
        count = 0  # lines, for the `end` line: a late part is a line of its own but no second SMS
        for line in self.lines:
            count += 1
            key = group_key(line)
            g = groups.get(key)
            if g is None:
                g = groups[key] = [0, 0, 0, 0, 0]
            g[4] = count
            g[0] += line.sms
            g[1] += line.parts
            if line.price is not None:
                g[2] += line.price
                g[3] += line.commission or 0
            second = int(line.ts)
            if second // 900 != block:
                # Every UTC offset is a multiple of 15 minutes, so a local quarter hour has one date
                # and one hour: one time zone conversion per quarter hour, not per line.
                block = second // 900
                found = cache.get(block)
                if found is None:
                    start = datetime.fromtimestamp(block * 900, tz)
                    found = cache[block] = (start.strftime("%Y-%m-%d\t%H:"), start.minute)
                prefix, minute0 = found
            rest = second % 900
            buf.append(
                f"{prefix}{minute0 + rest // 60:02d}:{rest % 60:02d}\t{line.kind}\t{clean(line.party)}\t"
                f"{clean(line.origin)}\t{clean(line.destination)}\t{line.parts}\t{line.status}\t"
                f"{clean(line.reason)}\t{pln(line.price)}\t{pln(line.commission)}\n"
            )
            if len(buf) >= _CHUNK:
                yield out("".join(buf))
                buf.clear()
        if buf:
            yield out("".join(buf))
        spelt = user_spellings(groups)
        for (kind, party, number, status), (sms, parts, price, commission, _last) in groups.items():
            if kind in USER_KINDS:
                party = spelt[fold_user(party)]
            self.totals.add_group(kind, party, number, status, sms, parts, price, commission)
        yield out(self._totals())
        self.totals.sha256 = digest.hexdigest()
        yield f"end\t{count}\tsha256:{self.totals.sha256}\n".encode()

    def _head(self) -> str:
        h = self.header
        start, end = h.month.start(h.tz), h.month.next().start(h.tz)
        rows = [
            f"# smsgw billing file\tlayout {LAYOUT}",
            f"# account\t{clean(shown_account(h.account, h.account_id))}",
            f"# month\t{h.month}",
            f"# period\t{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}\t{h.tz.key}"
            f"\t{h.month.hours(h.tz):g} hours",
            "# money\tPLN net (excluding VAT), two decimals, summed from integer grosze",
        ]
        if h.accepted_parts is not None:
            rows.append(f"# accepted parts (usage counter)\t{h.accepted_parts}")
        rows += [f"# note\t{clean(n)}" for n in h.notes]
        rows.append("\t".join(COLUMNS))
        return "\n".join(rows) + "\n"

    def _totals(self) -> str:
        t = self.totals
        rows = ["# totals", "# " + "\t".join(TOTAL_COLUMNS)]
        groups: list[tuple[str, dict[str, Sum]]] = [
            ("user", dict(sorted(t.by_user.items()))),
            ("kind", t.by_kind),
            ("number", dict(sorted(t.by_number.items()))),
            ("all", {"-": t.all}),
        ]
        for group, sums in groups:
            for key, s in sums.items():
                counts = "\t".join(str(s.by_status[k]) for k in STATUSES)
                rows.append(
                    f"total\t{group}\t{clean(key)}\t{s.sms}\t{s.parts}\t{counts}\t{pln(s.price)}\t{pln(s.commission)}"
                )
        return "\n".join(rows) + "\n"
