"""A billing run that failed for one account's file is told on the billing page to the operator and
to that account's admin, not to every company admin (R-5, R-6); the page lists only files.

Another account's file of 2026-02 could not be written (a directory stood in its place): every
company admin read "The billing of 2026-02 failed", and their own file, written whole, was marked
"incomplete: a run stopped partway". Those whose file was written are told only that their next bill
waits (tests/test_web_billing_notice_waits.py). The operator's list offered the directory as a bill ("rival
60 bytes"), its link a 404. A real daemon whose scheduled run fails on a real billing directory, a
real relay sink, the panel and /metrics over real HTTP.

/metrics had no gauge of a failing billing run or purge (only /healthz said it): `smsgw_job_failing`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from billing_reports import failures
from gateway.config import parse_config
from tests.billing_world import at, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_web_browser import WEB
from tests.web_helpers import login, password_hash

MONTH = "2026-02"
ACME, RIVAL, OPERATOR = "boss@acme.example", "boss@rival.example", "op@acme.example"


def config(tmp_path: Path, relay: int) -> tuple[Path, Any]:
    """acme and rival, each with an SMS in February; rival's file of the month is a directory."""
    traffic = {"acme": [at(2026, 2, 10, 12)], "rival": [at(2026, 2, 11, 12)]}
    path, cfg = prepare(tmp_path, relay, last_billed="2026-01", traffic=traffic)
    path.write_text(path.read_text() + WEB)
    cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
    (cfg.billing_dir / MONTH / "rival.txt").mkdir(parents=True)
    return path, cfg


async def people(gw: Any) -> None:
    accounts = gw.store.accounts

    def add() -> None:
        for email, account, role in (
            (ACME, "acme", "admin"),
            (RIVAL, "rival", "admin"),
            (OPERATOR, "acme", "operator"),
        ):
            accounts.add_user(email, account)
            accounts.set_user(email, password_hash=password_hash(), role=role)

    await gw.store.write(add)


async def billing_page(gw: Any, email: str) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
        assert (await login(c, email)).status_code == 303
        return (await c.get("/billing")).text


async def test_only_the_account_whose_file_failed_and_the_operator_are_told(tmp_path: Path) -> None:
    relay = free_port()
    _, cfg = config(tmp_path, relay)
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 4, 9, 9)) as gw:
        await gw.until(lambda: "billing" in failures.failures(gw.store.db.conn))
        assert failures.failures(gw.store.db.conn)["billing"]["month"] == MONTH
        await people(gw)
        acme, rival, ops = [await billing_page(gw, who) for who in (ACME, RIVAL, OPERATOR)]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.daemon.web.port}") as c:
            metrics = (await c.get("/metrics")).text
    # An alert on metrics sees it too: only /healthz's text said it.
    assert 'smsgw_job_failing{job="billing"} 1.0' in metrics, metrics
    assert 'smsgw_job_failing{job="purge"} 0.0' in metrics, metrics
    # acme's own file was written whole: its bill, with no failure of it and no "incomplete" mark
    # (only its March bill waiting: tests/test_web_billing_notice_waits.py).
    assert f"bill for {MONTH}" not in acme and "rival" not in acme, acme
    assert f'href="/billing/{MONTH}/acme.txt"' in acme and 'class="incomplete"' not in acme, acme
    # rival's was not: its admin is told, as is the operator, whose list marks the month incomplete.
    assert 'id="billing-failed"' in rival and f"the billing run of {MONTH} failed" in rival, rival
    assert 'id="billing-failed"' in ops and f"billing run of {MONTH} has failed" in ops, ops
    assert f'href="/billing/{MONTH}/acme.txt"' in ops and 'class="incomplete"' in ops, ops
    # The directory standing where rival's file goes is no bill to download.
    link = f'href="/billing/{MONTH}/rival.txt"'
    assert link not in ops and link not in rival, ops


async def test_a_company_made_after_the_failed_month_is_not_told_of_it(tmp_path: Path) -> None:
    # Its file of 2026-02 was never to be written: the company did not exist then. Its admin read
    # "The billing of 2026-02 failed" because no file of theirs lay whole in the month; nor is it told
    # of a bill waiting: its first, April's, is not due yet.
    relay = free_port()
    _, cfg = config(tmp_path, relay)
    late = "boss@late.example"
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 4, 9, 9)) as gw:
        await gw.until(lambda: "billing" in failures.failures(gw.store.db.conn))
        await people(gw)

        def add() -> None:
            gw.store.accounts.add_account("late")  # made now, in April
            gw.store.accounts.add_user(late, "late")
            gw.store.accounts.set_user(late, password_hash=password_hash(), role="admin")

        await gw.store.write(add)
        page, rival = await billing_page(gw, late), await billing_page(gw, RIVAL)
    assert 'id="billing-failed"' not in page and "failed" not in page, page
    assert 'id="billing-failed"' in rival, rival  # the account whose file failed is still told


async def test_a_company_made_since_the_failed_month_whose_bill_waits_is_told(tmp_path: Path) -> None:
    # Made in March, after the failing month: its file of March is held up by the same run (it stops
    # at February), and its admin was told nothing, as if made after every month owed.
    relay = free_port()
    _, cfg = config(tmp_path, relay)
    mid = "boss@mid.example"
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 4, 9, 9)) as gw:
        await gw.until(lambda: "billing" in failures.failures(gw.store.db.conn))
        await people(gw)

        def add() -> None:
            made = gw.store.accounts.add_account("mid")
            gw.store.accounts.add_user(mid, "mid")
            gw.store.accounts.set_user(mid, password_hash=password_hash(), role="admin")
            # Made in March (no command makes an account in the past).
            gw.store.db.conn.execute(
                "UPDATE accounts SET created_at = ? WHERE id = ?", (at(2026, 3, 15, 12), made.id)
            )

        await gw.store.write(add)
        page = await billing_page(gw, mid)
    assert 'id="billing-failed"' in page and "Your bill for 2026-03 is not made yet" in page, page
    assert f"the billing run is stopped at {MONTH}" in page and f"bill for {MONTH}" not in page, page
