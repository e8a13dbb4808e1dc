"""Billing files an account keeps when it is removed, and the mailed file the panel offers.

`smsgw account remove` refuses an account whose bill was mailed, as it refuses one with traffic: the
file sent stays on disk (R-5.1), and a month written again without the account left that file listed
beside a summary that no longer named it. A month written again after it was mailed with other rows
keeps the mailed file in `mailed-*/`; the panel says the file changed since it was mailed and offers
the mailed one too (a company admin only their own account's)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports import job
from billing_reports.monthly import Month
from billing_reports.writer import SUMMARY, month_dir, write_month
from gateway.store.db import Store
from gateway.web.app import WebContext
from tests.billing_world import at, cli, prepare
from tests.conftest import free_port
from tests.web_helpers import ADMIN, OPERATOR, OTHER_ADMIN, add_mail, as_user, seeded_store, web_context


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


def _mailed_then_written_again(tmp_path: Path) -> tuple[WebContext, Month, dict[str, bytes], Path]:
    """This month's files of acme and rival mailed (as `billing run --send` queues and marks them),
    then written again after a late SMS of acme: the panel, the files as mailed, their copies' dir."""
    store = seeded_store(tmp_path)
    add_mail(store, "acme", ADMIN, "+48601000001", "acme text")
    add_mail(store, "rival", OTHER_ADMIN, "+48602000002", "rival text")
    tz = ZoneInfo("Europe/Warsaw")
    web = web_context(tmp_path, store)
    month = Month.containing(store.clock(), tz)
    files = write_month(store.db.path, tmp_path, month, tz)
    assert job.queue_mails(store, web.config, files, again=False).mails > 0
    directory = month_dir(tmp_path, month)
    mailed = {name: (directory / name).read_bytes() for name in ("acme.txt", "rival.txt", SUMMARY)}
    add_mail(store, "acme", ADMIN, "+48601000009", "late text")
    again = write_month(store.db.path, tmp_path, month, tz)
    [copies] = {copy.parent for copy in again.kept.values()}
    store.db.serve()
    return web, month, mailed, copies


def _row(page: str, name: str) -> str:
    """The listing's row of the file `name`."""
    [row] = [r for r in page.split("<tr>") if f'/{name}" download>' in r]
    return row


async def test_the_panel_marks_a_file_changed_since_mailed_and_offers_the_mailed_one(tmp_path: Path) -> None:
    web, month, mailed, copies = _mailed_then_written_again(tmp_path)
    directory = month_dir(tmp_path, month)
    assert (copies / "acme.txt").read_bytes() == mailed["acme.txt"] != (directory / "acme.txt").read_bytes()
    try:
        async with as_user(web, ADMIN) as c:
            row = _row((await c.get("/billing")).text, "acme.txt")
            assert "changed since it was mailed on " in row
            assert f'href="/billing/{month}/acme.txt?as=mailed"' in row
            now = await c.get(f"/billing/{month}/acme.txt")
            assert now.status_code == 200 and now.content == (directory / "acme.txt").read_bytes()
            sent = await c.get(f"/billing/{month}/acme.txt?as=mailed")
            assert sent.status_code == 200 and sent.content == mailed["acme.txt"]
            assert "as mailed" in sent.headers["content-disposition"]
            for other in ("rival.txt", SUMMARY, "..%2Facme.txt", f"..%2F{copies.name}%2Facme.txt"):
                assert (await c.get(f"/billing/{month}/{other}?as=mailed")).status_code == 404, other
        async with as_user(web, OTHER_ADMIN) as c:
            page = (await c.get("/billing")).text
            assert "changed since" not in page and "?as=mailed" not in page  # rival's file is as mailed
            for other in ("rival.txt", "acme.txt"):
                assert (await c.get(f"/billing/{month}/{other}?as=mailed")).status_code == 404, other
        async with as_user(web, OPERATOR) as c:
            page = (await c.get("/billing")).text
            for name in ("acme.txt", SUMMARY):
                assert "changed since it was mailed on " in _row(page, name), name
                sent = await c.get(f"/billing/{month}/{name}?as=mailed")
                assert sent.status_code == 200 and sent.content == mailed[name], name
            assert "changed since" not in _row(page, "rival.txt")
            assert (await c.get(f"/billing/{month}/rival.txt?as=mailed")).status_code == 404
    finally:
        web.counts.close()
        web.store.close()


async def test_a_mailed_copy_that_is_a_link_is_said_not_kept_and_not_served(tmp_path: Path) -> None:
    web, month, _mailed, copies = _mailed_then_written_again(tmp_path)
    moved = (copies / "acme.txt").rename(tmp_path / "moved.txt")
    (copies / "acme.txt").symlink_to(moved)  # the mailed bytes, through a link: not served
    try:
        async with as_user(web, ADMIN) as c:
            row = _row((await c.get("/billing")).text, "acme.txt")
            assert "changed since it was mailed on " in row and "the file as mailed is not kept here" in row
            assert (await c.get(f"/billing/{month}/acme.txt?as=mailed")).status_code == 404
    finally:
        web.counts.close()
        web.store.close()
