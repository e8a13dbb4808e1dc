"""A month's billing keeps its sums per what the totals read, not per voting phone.

The sums were keyed by each line's party, which for a premium MO or a reply is the phone: a TV vote
from 900,001 phones held 900,001 sums (444 MB at the daemon's 00:05 run, most of it kept after),
all thrown away by totals that read a party only for users. Counted here as the number of sums, which
must not grow with the phones (memory is the bench's: bench/billing.py --premium).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month, lines
from billing_reports.render import Header, Rendering
from gateway.store.db import Store

TZ = ZoneInfo("Europe/Warsaw")
MONTH = Month(2026, 11)


def month_with_phones(path: Path, phones: int) -> sqlite3.Connection:
    """One account's month: 600 paid votes and 600 replies, from `phones` distinct phones."""
    Store.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    start, _end = MONTH.bounds(TZ)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO accounts (id, name, created_at) VALUES (1, 'TV', ?)", (start - 86400,))
    mo, premium = [], []
    for i in range(1, 1201):
        phone, ts = f"+48601{i % phones:06d}", start + i * 60
        vote = i % 2 == 0
        state = "premium" if vote else "mailed"
        mo.append(
            (i, "smpp", phone, "7355" if vote else "+48100200300", "x", state, ts, 1, None if vote else 1)
        )
        if vote:
            premium.append((i, i, "7355", phone, 1, "KP1", 1, 300, 110, "x", "mailed", ts))
    conn.executemany(
        "INSERT INTO mo (id, link, source, destination, text, state, received_at, parts, account_id)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        mo,
    )
    conn.executemany(
        "INSERT INTO premium_mo (id, mo_id, number, phone, account_id, password, parts, price, commission,"
        " text, state, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        premium,
    )
    conn.execute("COMMIT")
    return conn


def rendered(tmp_path: Path, phones: int) -> tuple[Rendering, list[str]]:
    conn = month_with_phones(tmp_path / f"{phones}.db", phones)
    try:
        r = Rendering(Header("TV", MONTH, TZ), lines(conn, 1, MONTH, TZ))
        text = b"".join(r.chunks()).decode()
    finally:
        conn.close()
    return r, [row for row in text.splitlines() if row.startswith("total\t")]


def test_the_sums_do_not_grow_with_the_voting_phones(tmp_path: Path) -> None:
    few, few_totals = rendered(tmp_path, 3)
    many, many_totals = rendered(tmp_path, 600)
    assert few_totals == many_totals  # the same totals, whoever voted
    assert "total\tnumber\t7355\t600\t600\t600\t0\t0\t0\t1800.00\t660.00" in many_totals, many_totals
    assert "total\tkind\tMO-reply\t600\t600\t600\t0\t0\t0\t0.00\t0.00" in many_totals, many_totals
    assert len(many.groups) == len(few.groups) == 2, sorted(many.groups)
