"""Billing a month again, over a real store with an injected clock: one account run again rewrites the
summary with it, a mailed month written again with other rows says so, and one account sent again
mails only that account's file. Split from test_billing.py by subject (it was over 400 lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.main import main
from tests.billing_reader import read
from tests.test_billing import add_account, at, mt, setup


def test_one_account_run_again_rewrites_the_summary_with_it(tmp_path: Path) -> None:
    # The month was billed; an SMS of acme's was settled late and acme's file is written again by
    # hand. The summary kept acme's old totals and checksum: the operator's page and the file disagreed.
    cfg, store, _, path = setup(tmp_path, at(2026, 2, 1))
    acme, beta = add_account(store), add_account(store, "beta")
    mt(store, acme, at(2026, 2, 3))
    mt(store, beta, at(2026, 2, 4))
    c = ["-c", str(path)]
    directory = cfg.state_dir / "billing" / "2026-02"
    assert main([*c, "billing", "run", "--month", "2026-02"]) == 0
    beta_file = (directory / "beta.txt").stat()
    mt(store, acme, at(2026, 2, 5))
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "acme"]) == 0
    acme_file = read((directory / "acme.txt").read_bytes())
    assert len(acme_file.sms) == 2
    summary = {r.split("\t")[0]: r.split("\t") for r in (directory / "_summary.txt").read_text().splitlines()}
    acme_sha = (directory / "acme.txt").read_bytes().rstrip(b"\n").rpartition(b"sha256:")[2].decode()
    assert (summary["acme"][1], summary["acme"][-1]) == ("2", acme_sha)
    assert summary["total"][1] == "3"
    assert (directory / "beta.txt").stat().st_mtime_ns == beta_file.st_mtime_ns  # its rows did not change
    # Another account's rows changed too: its file is written with the summary, which names it.
    mt(store, beta, at(2026, 2, 6))
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "acme"]) == 0
    assert len(read((directory / "beta.txt").read_bytes()).sms) == 2
    assert (directory / "_summary.txt").read_text().splitlines()[-2].split("\t")[1] == "4"
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "nobody"]) == 1
    assert store.db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0


def test_a_mailed_month_written_again_with_other_rows_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A late report or a renamed user changes a month already mailed: the file on disk was rewritten
    # in silence, and no longer matched the one the account (and the operator) had been sent.
    _cfg, store, _, path = setup(tmp_path, at(2026, 2, 1))
    acme = add_account(store)
    mt(store, acme, at(2026, 2, 3))
    c = ["-c", str(path)]
    assert main([*c, "billing", "run", "--month", "2026-02", "--send"]) == 0
    capsys.readouterr()
    assert main([*c, "billing", "run", "--month", "2026-02"]) == 0  # same rows: nothing to say
    assert "not the file mailed" not in capsys.readouterr().err
    mt(store, acme, at(2026, 2, 5))
    assert main([*c, "billing", "run", "--month", "2026-02"]) == 0
    err = capsys.readouterr().err
    assert "acme.txt: not the file mailed on " in err and "--send --again" in err
    assert main([*c, "billing", "run", "--month", "2026-02", "--send", "--again"]) == 0
    assert "not the file mailed" not in capsys.readouterr().err


def test_one_account_sent_again_mails_only_that_accounts_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--account acme --send --again` also mailed beta's file, rewritten beside acme's for the
    # summary after a late report changed it; without --again it refused over beta's earlier mail.
    _cfg, store, _, path = setup(tmp_path, at(2026, 2, 1))
    acme, beta = add_account(store), add_account(store, "beta")
    store.accounts.set_billing_addresses("beta", ["billing@beta.pl"])
    mt(store, acme, at(2026, 2, 3))
    mt(store, beta, at(2026, 2, 4))
    c = ["-c", str(path)]
    assert main([*c, "billing", "run", "--month", "2026-02", "--send"]) == 0
    sent = store.db.conn.execute("SELECT MAX(id) FROM outbox").fetchone()[0]
    mt(store, beta, at(2026, 2, 6))  # beta's rows change (acme's file is rewritten the same)
    mt(store, acme, at(2026, 2, 7))
    capsys.readouterr()
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "acme", "--send", "--again"]) == 0
    assert "beta.txt" in capsys.readouterr().out  # written for the summary
    rows = store.db.conn.execute("SELECT rcpt, content FROM outbox WHERE id > ?", (sent,)).fetchall()
    assert rows and all(b"Subject: SMS billing 2026-02: acme" in content for _, content in rows)
    assert "billing@beta.pl" not in [rcpt for rcpt, _ in rows]
    mt(store, acme, at(2026, 2, 8))
    mt(store, beta, at(2026, 2, 9))
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "acme", "--send"]) == 1
    err = capsys.readouterr().err
    assert "/acme.txt: 2026-02 was already queued to be mailed" in err
    assert "beta.txt: 2026-02 was already queued to be mailed" not in err
