"""What `billing run --send` says of a file it does not mail: the summary of a run for one account
(that run mails the account's file alone, `--again` or not), and a file mailed before, named by its
path, so that an account called `summary` is not taken for the month's summary."""

from __future__ import annotations

from pathlib import Path

from gateway.store.db import Store
from tests.billing_world import at, cli, fill, prepare
from tests.conftest import free_port


def test_a_run_for_one_account_with_again_says_its_changed_summary_is_not_mailed(tmp_path: Path) -> None:
    traffic = {"acme": [at(2026, 3, 2, 8)], "beta": [at(2026, 3, 3, 9)]}
    path, cfg = prepare(tmp_path, free_port(), last_billed="2026-02", traffic=traffic)
    month = cfg.state_dir / "billing" / "2026-03"
    sent = cli(path, "billing", "run", "--month", "2026-03", "--send")
    assert sent.returncode == 0, sent.stderr
    store = Store.open(cfg.db_path, clock=lambda: at(2026, 4, 5))
    try:
        fill(store, store.accounts.get_account("acme").id, [at(2026, 3, 10, 9)])  # settled late
    finally:
        store.close()

    resent = cli(path, "billing", "run", "--month", "2026-03", "--account", "acme", "--send", "--again")
    assert resent.returncode == 0, resent.stderr
    assert "2 mail(s) queued" in resent.stdout  # acme's corrected file, to acme and the operator
    # The summary was rewritten with acme's new totals and stays unmailed: the operator holds the
    # old one, and --again alone would not mail it.
    assert f"{month / '_summary.txt'}: not the summary mailed on " in resent.stderr, resent.stderr
    assert "(`--send --again` without --account mails this one)" in resent.stderr
    assert "add --again" not in resent.stderr
    assert (
        f"{month / '_summary.txt'}: summary rewritten with it (the month was billed; not mailed:"
        " a run for one account mails that account's file alone)"
    ) in resent.stdout, resent.stdout

    store = Store.open(cfg.db_path)
    try:
        summaries = store.db.conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'billing'"
            " AND CAST(content AS TEXT) LIKE '%Subject: SMS billing 2026-03: summary of%'"
        ).fetchone()[0]
    finally:
        store.close()
    assert summaries == 1  # the first run's only


def test_an_account_named_summary_is_told_apart_from_the_months_summary(tmp_path: Path) -> None:
    traffic = {"acme": [at(2026, 3, 2, 8)], "summary": [at(2026, 3, 3, 9)]}
    path, cfg = prepare(tmp_path, free_port(), last_billed="2026-02", traffic=traffic)
    month = cfg.state_dir / "billing" / "2026-03"
    assert cli(path, "billing", "run", "--month", "2026-03", "--send").returncode == 0

    second = cli(path, "billing", "run", "--month", "2026-03", "--send")
    assert second.returncode == 1
    held = [line for line in second.stderr.splitlines() if "was already queued to be mailed" in line]
    assert [line.split(": 2026-03 was already queued to be mailed on ")[0] for line in held] == [
        str(month / "acme.txt"),
        str(month / "summary.txt"),
        str(month / "_summary.txt"),
    ], second.stderr
    assert all(line.endswith("; not queued again (add --again to mail it again)") for line in held)
