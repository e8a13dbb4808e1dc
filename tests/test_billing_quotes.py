"""A billing file read by a spreadsheet's import (here Python's csv `excel-tab`, which reads quotes as
a spreadsheet does) keeps every line a record of its documented columns: a field from outside that
starts with `"` would open a quoted cell there, taking the tabs and lines after it along."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from billing_reports.monthly import Month
from billing_reports.render import COLUMNS, TOTAL_COLUMNS
from billing_reports.writer import write_month
from gateway.store.db import Store
from tests.billing_reader import read
from tests.billing_world import TZ, at, fill, prepare
from tests.conftest import free_port

BEST = '"Best Sp. z o.o.'  # an account name as a company wrote it, its closing quote forgotten
ANNA = '"anna;nowak"@zolw.pl'  # a quoted local part: an address the ACL takes
SUMMARY_COLUMNS = 10  # account, sms, parts, 4 statuses, price, commission, file_sha256


def rows(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8")
    found = list(csv.reader(io.StringIO(text, newline=""), dialect="excel-tab"))
    assert len(found) == len(text.splitlines())  # no line taken into another's cell
    return found


def test_a_field_starting_with_a_quote_stays_in_its_cell_when_a_spreadsheet_reads_the_files(
    tmp_path: Path,
) -> None:
    _, cfg = prepare(
        tmp_path,
        free_port(),
        last_billed="2026-02",
        traffic={BEST: [at(2026, 3, 2, 9)], "acme": [at(2026, 3, 3, 9)], "zeta": [at(2026, 3, 4, 9)]},
    )
    store = Store.open(cfg.db_path, clock=lambda: at(2026, 4, 2, 9))
    try:
        best_id = store.accounts.get_account(BEST).id
        user = store.accounts.add_user(ANNA, BEST)
        store.db.conn.execute(
            "UPDATE emails SET user_id = ?, mail_from = ? WHERE account_id = ?", (user.id, ANNA, best_id)
        )
        store.db.conn.execute(
            "UPDATE messages SET state = 'failed', reason = '\"no route' WHERE account_id = ?", (best_id,)
        )
        fill(store, best_id, [at(2026, 3, 5, 9)])  # a second user after it: a line a quote would take
    finally:
        store.close()
    files = write_month(cfg.db_path, cfg.state_dir, Month(2026, 3), TZ, billing_dir=cfg.billing_dir)
    assert files.summary is not None and len(files.accounts) == 3

    best = next(f for f in files.accounts if f.account == BEST)
    assert len(read(best.path.read_bytes()).sms) == 2  # the end line still counts and hashes every byte
    cells = rows(best.path)
    assert ["# account", "'" + BEST] in cells
    start = cells.index(list(COLUMNS)) + 1
    sms = cells[start : start + 2]
    assert all(len(line) == len(COLUMNS) for line in sms), sms
    assert [(line[3], line[8]) for line in sms] == [("'" + ANNA, "'\"no route"), ("anna@acme.example", "")]
    totals = [line for line in cells if line[0] == "total"]
    assert totals and all(len(line) == len(TOTAL_COLUMNS) for line in totals), totals
    users = {line[2]: line[3] for line in totals if line[1] == "user"}
    assert users == {"'" + ANNA: "1", "anna@acme.example": "1"}
    assert cells[-1][0] == "end"

    summary = rows(files.summary)
    accounts = [line for line in summary if line and not line[0].startswith("#") and line[0] != "end"]
    assert all(len(line) == SUMMARY_COLUMNS for line in accounts), accounts
    assert [line[0] for line in accounts] == ["account", "'" + BEST, "acme", "zeta", "total"]
    assert [line[1] for line in accounts[1:]] == ["2", "1", "1", "4"]
