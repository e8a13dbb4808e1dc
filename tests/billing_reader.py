"""A small reader of billing files (layout 1), as a receiver's script would be: the tests' oracle."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

COLUMNS = [
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
]


@dataclass
class BillingFile:
    header: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sms: list[dict[str, str]] = field(default_factory=list)
    totals: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)


def grosze(pln: str) -> int:
    sign, digits = (-1, pln[1:]) if pln.startswith("-") else (1, pln)
    units, cents = digits.split(".")
    assert len(cents) == 2 and units.isdigit() and cents.isdigit(), pln
    return sign * (int(units) * 100 + int(cents))


def read(data: bytes) -> BillingFile:
    """Parse and verify: the end line's count and checksum match, every line has its columns."""
    body, _, last = data.rstrip(b"\n").rpartition(b"\n")
    body += b"\n"
    tag, count, checksum = last.decode().split("\t")
    assert tag == "end" and checksum == "sha256:" + hashlib.sha256(body).hexdigest()
    out = BillingFile()
    section = "header"
    total_columns: list[str] = []
    for line in body.decode("utf-8").splitlines():
        cells = line.split("\t")
        if section == "header":
            if line == "\t".join(COLUMNS):
                section = "sms"
            elif cells[0] == "# note":
                out.notes.append(cells[1])
            else:
                out.header[cells[0].lstrip("# ")] = cells[1:]
        elif section == "sms":
            if line == "# totals":
                section = "totals"
                continue
            assert len(cells) == len(COLUMNS), line
            out.sms.append(dict(zip(COLUMNS, cells, strict=True)))
        elif line.startswith("# total\t"):
            total_columns = line[2:].split("\t")
        else:
            row = dict(zip(total_columns, cells, strict=True))
            out.totals[(row["group"], row["key"])] = row
    assert int(count) == len(out.sms)
    return out
