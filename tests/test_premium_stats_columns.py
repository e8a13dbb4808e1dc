"""`smsgw premium stats` keeps its fields apart at any size.

The fields were set by widths alone: at a TV vote's 7 digits the MOs and the parts ran together
("9000011800001" for 900001 MOs and 1800001 parts), and a script splitting the line read one figure.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.test_premium import run_cli

VOTES = 1_000_000  # the first count of 7 digits


def test_seven_digit_counts_stay_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tmp_path, "account", "add", "acme") == 0  # makes the store
    start = datetime(2026, 11, 1, tzinfo=ZoneInfo("Europe/Warsaw")).timestamp()
    conn = sqlite3.connect(tmp_path / "smsgw.db", isolation_level=None)
    try:
        # A month's votes no service took (the fallback's), each of 12 parts: parts in 8 digits.
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO premium_mo (id, mo_id, number, phone, parts, price, commission, text, state,"
            " received_at) SELECT i, i, '7355', '+48601000001', 12, 3600, 1320, '', 'fallback', ? + i FROM n",
            (VOTES, start),
        )
    finally:
        conn.close()
    capsys.readouterr()
    assert run_cli(tmp_path, "premium", "stats", "--month", "2026-11") == 0
    out = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("20")]  # log lines
    assert out[1].split() == ["service", "number", "MOs", "parts", "price", "commission"], out
    assert out[2].split() == ["(none)", "7355", "1000000", "12000000", "36000000.00", "0.00"], out
    assert out[3].split() == ["total", "1000000", "12000000", "36000000.00", "0.00"], out
