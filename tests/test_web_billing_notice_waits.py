"""A company admin's billing page names every bill of theirs a failing billing run holds up (R-5, R-7.6).

The run bills month by month and stops at the month that fails: while 2026-02 fails, 2026-03 is made
for no one. acme's file of February was written whole (rival's could not be: a directory stands in
its place), and acme's admin was told nothing of its March bill waiting; rival's admin, told "The
billing of 2026-02 failed", was not told its March bill waits too. Each company is told its own
bills by month, never the other company's name, path or error. A real daemon whose scheduled run
fails on a real billing directory, the panel over real HTTP, real SQLite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from billing_reports import failures
from gateway.config import parse_config
from tests.billing_world import at, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_web_billing_failure_own import ACME, MONTH, OPERATOR, RIVAL, billing_page, config, people
from tests.test_web_browser import WEB
from tests.web_helpers import password_hash


def told(page: str) -> str:
    """The notice's text ("" when none)."""
    start = page.find('id="billing-failed">')
    return "" if start < 0 else page[start + len('id="billing-failed">') : page.index("</p>", start)]


def nothing_of_another(page: str, cfg: Any) -> None:
    """No other company's name, no path, no error text."""
    for secret in ("rival", str(cfg.billing_dir), str(cfg.state_dir), "Error", "Traceback", "directory"):
        assert secret not in page, (secret, page)


async def company(gw: Any, name: str, email: str, made: float) -> None:
    def add() -> None:
        account = gw.store.accounts.add_account(name)
        gw.store.accounts.add_user(email, name)
        gw.store.accounts.set_user(email, password_hash=password_hash(), role="admin")
        # No command makes an account in the past.
        gw.store.db.conn.execute("UPDATE accounts SET created_at = ? WHERE id = ?", (made, account.id))

    await gw.store.write(add)


async def test_a_company_whose_file_of_the_failed_month_was_made_is_told_its_next_bill_waits(
    tmp_path: Path,
) -> None:
    relay = free_port()
    _, cfg = config(tmp_path, relay)
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 4, 9, 9)) as gw:
        await gw.until(lambda: "billing" in failures.failures(gw.store.db.conn))
        await people(gw)
        acme, rival, ops = [await billing_page(gw, who) for who in (ACME, RIVAL, OPERATOR)]
    assert told(acme) == (
        "Your bill for 2026-03 is not made yet: the billing run is stopped at 2026-02; each month is made"
        " only after the one before. The operator has been told, and the run is tried again every hour."
    ), acme
    nothing_of_another(acme, cfg)
    # Its February bill is still its bill, not marked incomplete.
    assert f'href="/billing/{MONTH}/acme.txt"' in acme and 'class="incomplete"' not in acme, acme
    # The company whose file failed is told its March bill waits as well as February's.
    assert told(rival) == (
        "Your bills for 2026-02 and 2026-03 are not made yet: the billing run of 2026-02 failed, and each"
        " month is made only after the one before. The operator has been told, and the run is tried"
        " again every hour."
    ), rival
    assert str(cfg.billing_dir) not in rival and "Error" not in rival, rival
    # The operator's words are the run's, with its error.
    assert f"The billing run of {MONTH} has failed since" in told(ops), ops


async def test_a_run_stuck_for_months_names_each_companys_waiting_bills(tmp_path: Path) -> None:
    # June: February still fails, March to May wait behind it; a company made in April owes April and
    # May, one made in June owes nothing yet.
    relay = free_port()
    _, cfg = config(tmp_path, relay)
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 6, 9, 9)) as gw:
        await gw.until(lambda: "billing" in failures.failures(gw.store.db.conn))
        await people(gw)
        await company(gw, "april", "boss@april.example", at(2026, 4, 20, 12))
        await company(gw, "june", "boss@june.example", at(2026, 6, 2, 12))
        acme, rival = await billing_page(gw, ACME), await billing_page(gw, RIVAL)
        april, june = (
            await billing_page(gw, "boss@april.example"),
            await billing_page(gw, "boss@june.example"),
        )
    assert told(acme).startswith(
        "Your bills for 2026-03 to 2026-05 are not made yet: the billing run is stopped at 2026-02;"
    ), acme
    assert told(rival).startswith(
        "Your bills for 2026-02 to 2026-05 are not made yet: the billing run of 2026-02 failed,"
    ), rival
    assert told(april).startswith(
        "Your bills for 2026-04 and 2026-05 are not made yet: the billing run is stopped at 2026-02;"
    ), april
    assert 'id="billing-failed"' not in june and "failed" not in june, june
    for page in (acme, april):
        nothing_of_another(page, cfg)


async def test_when_the_failed_month_is_the_last_owed_only_its_failed_bill_is_told(tmp_path: Path) -> None:
    # March: February is the last month ended. acme's February bill was made and nothing of theirs
    # waits; rival's February bill is the one not made, and no later bill is named.
    relay = free_port()
    _, cfg = config(tmp_path, relay)
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 3, 9, 9)) as gw:
        await gw.until(lambda: "billing" in failures.failures(gw.store.db.conn))
        await people(gw)
        acme, rival = await billing_page(gw, ACME), await billing_page(gw, RIVAL)
    assert 'id="billing-failed"' not in acme and "failed" not in acme, acme
    assert told(rival) == (
        "Your bill for 2026-02 is not made yet: the billing run of 2026-02 failed. The operator has been"
        " told, and the run is tried again every hour."
    ), rival


async def test_a_month_no_file_of_which_could_be_written_tells_every_company_both_bills(
    tmp_path: Path,
) -> None:
    # A file stands where February's directory goes: no company's file of it is made, and each is
    # told its February and March bills wait, with no path.
    relay = free_port()
    traffic = {"acme": [at(2026, 2, 10, 12)], "rival": [at(2026, 2, 11, 12)]}
    path, cfg = prepare(tmp_path, relay, last_billed="2026-01", traffic=traffic)
    path.write_text(path.read_text() + WEB)
    cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
    cfg.billing_dir.mkdir(parents=True, exist_ok=True)
    (cfg.billing_dir / MONTH).write_text("not a directory\n")
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 4, 9, 9)) as gw:
        await gw.until(lambda: "billing" in failures.failures(gw.store.db.conn))
        await people(gw)
        acme, rival = await billing_page(gw, ACME), await billing_page(gw, RIVAL)
    for page in (acme, rival):
        assert told(page).startswith(
            "Your bills for 2026-02 and 2026-03 are not made yet: the billing run of 2026-02 failed,"
        ), page
        assert str(cfg.billing_dir) not in page and "not a directory" not in page, page
