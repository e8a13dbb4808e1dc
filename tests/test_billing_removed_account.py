"""Billing files an account keeps when it is removed, and the mailed file the panel offers.

`smsgw account remove` refuses an account whose bill was mailed, as it refuses one with traffic: the
file sent stays on disk (R-5.1), and a month written again without the account left that file listed
beside a summary that no longer named it. A month written again after it was mailed with other rows
keeps the mailed file in `mailed-*/`; the panel says the file changed since it was mailed and offers
the mailed one too (a company admin only their own account's)."""

from __future__ import annotations

from pathlib import Path

from gateway.store.db import Store
from tests.billing_world import at, cli, prepare
from tests.conftest import free_port


def _with_idle_account(tmp_path: Path) -> tuple[Path, Path]:
    """acme with an SMS in March 2026, and Tmp (billing address, no traffic): the config and March's dir."""
    path, cfg = prepare(tmp_path, free_port(), last_billed="2026-02", traffic={"acme": [at(2026, 3, 2, 8)]})
    store = Store.open(cfg.db_path, clock=lambda: at(2026, 1, 5))
    try:
        store.accounts.add_account("Tmp")
        store.accounts.set_billing_addresses("Tmp", ["billing@tmp.pl"])
    finally:
        store.close()
    return path, cfg.billing_dir / "2026-03"


def test_an_account_whose_bill_was_mailed_is_not_removed(tmp_path: Path) -> None:
    path, month = _with_idle_account(tmp_path)
    sent = cli(path, "billing", "run", "--month", "2026-03", "--send")
    assert sent.returncode == 0, sent.stderr
    mailed = (month / "Tmp.txt").read_bytes()

    removed = cli(path, "account", "remove", "Tmp")
    assert removed.returncode == 1, removed.stdout
    assert "account 'Tmp' is not removed: it has a bill mailed for 2026-03" in removed.stderr
    assert "suspend it instead: smsgw account suspend Tmp" in removed.stderr
    assert "Tmp" in cli(path, "account", "list").stdout

    rerun = cli(path, "billing", "run", "--month", "2026-03")  # the month as it was mailed
    assert rerun.returncode == 0, rerun.stderr
    assert (month / "Tmp.txt").read_bytes() == mailed
    assert any(line.startswith("Tmp\t0\t") for line in (month / "_summary.txt").read_text().splitlines())


def test_an_account_whose_file_was_never_mailed_is_removed_naming_that_file(tmp_path: Path) -> None:
    path, month = _with_idle_account(tmp_path)
    written = cli(path, "billing", "run", "--month", "2026-03")  # by hand, not mailed
    assert written.returncode == 0, written.stderr

    removed = cli(path, "account", "remove", "Tmp")
    assert removed.returncode == 0, removed.stderr
    assert "account Tmp removed" in removed.stdout
    assert f"never mailed stay on disk and in the panel: {month / 'Tmp.txt'}; delete them" in removed.stdout
    assert "Tmp" not in cli(path, "account", "list").stdout
