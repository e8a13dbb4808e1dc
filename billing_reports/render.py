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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from billing_reports.monthly import KINDS, MT, PREMIUM_ANSWER, STATUSES, Line, Month

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


def pln(grosze: int | None) -> str:
    """Integer grosze as PLN with two decimals, exactly (no float on the way)."""
    if grosze is None:
        return ""
    sign = "-" if grosze < 0 else ""
    g = abs(grosze)
    return f"{sign}{g // 100}.{g % 100:02d}"


def clean(value: object) -> str:
    """A field: no tab or line break may split a record."""
    s = str(value)
    if "\t" in s or "\n" in s or "\r" in s:
        s = " ".join(s.replace("\t", " ").split())
    return s


@dataclass(frozen=True)
class Header:
    account: str
    month: Month
    tz: ZoneInfo
    notes: tuple[str, ...] = ()  # e.g. detail rows removed by the retention purge
    accepted_parts: int | None = None  # the usage counter (never purged); None: not shown


@dataclass
class Sum:
    sms: int = 0
    parts: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    price: int = 0
    commission: int = 0

    def add(self, line: Line) -> None:
        self.sms += 1
        self.parts += line.parts
        self.by_status[line.status] += 1
        self.price += line.price or 0
        self.commission += line.commission or 0


@dataclass
class Totals:
    by_user: dict[str, Sum] = field(default_factory=dict)
    by_kind: dict[str, Sum] = field(default_factory=lambda: {k: Sum() for k in KINDS})
    by_number: dict[str, Sum] = field(default_factory=dict)
    all: Sum = field(default_factory=Sum)
    sha256: str = ""

    def add(self, line: Line) -> None:
        self.all.add(line)
        self.by_kind[line.kind].add(line)
        if line.kind in (MT, PREMIUM_ANSWER):
            self.by_user.setdefault(line.party, Sum()).add(line)
        if line.number is not None:
            self.by_number.setdefault(line.number, Sum()).add(line)


class Rendering:
    """Iterate `chunks()` for the bytes; `totals` is complete once the iteration ended."""

    def __init__(self, header: Header, lines: Iterable[Line]) -> None:
        self.header = header
        self.lines = lines
        self.totals = Totals()

    def chunks(self) -> Iterator[bytes]:
        digest = hashlib.sha256()

        def out(text: str) -> bytes:
            data = text.encode("utf-8")
            digest.update(data)
            return data

        yield out(self._head())
        buf: list[str] = []
        tz = self.header.tz
        minute_key, minute_text = -1, ""
        add = self.totals.add
        for line in self.lines:
            add(line)
            second = int(line.ts)
            if second // 60 != minute_key:  # lines come in time order: one conversion per minute
                minute_key = second // 60
                minute_text = datetime.fromtimestamp(minute_key * 60, tz).strftime("%Y-%m-%d\t%H:%M")
            buf.append(
                f"{minute_text}:{second % 60:02d}\t{line.kind}\t{clean(line.party)}\t{line.origin}\t"
                f"{line.destination}\t{line.parts}\t{line.status}\t{clean(line.reason)}\t"
                f"{pln(line.price)}\t{pln(line.commission)}\n"
            )
            if len(buf) >= _CHUNK:
                yield out("".join(buf))
                buf.clear()
        if buf:
            yield out("".join(buf))
        yield out(self._totals())
        self.totals.sha256 = digest.hexdigest()
        yield f"end\t{self.totals.all.sms}\tsha256:{self.totals.sha256}\n".encode()

    def _head(self) -> str:
        h = self.header
        start, end = h.month.start(h.tz), h.month.next().start(h.tz)
        rows = [
            f"# smsgw billing file\tlayout {LAYOUT}",
            f"# account\t{clean(h.account)}",
            f"# month\t{h.month}",
            f"# period\t{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}\t{h.tz.key}"
            f"\t{h.month.hours(h.tz):g} hours",
            "# money\tPLN, two decimals, summed from integer grosze",
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
