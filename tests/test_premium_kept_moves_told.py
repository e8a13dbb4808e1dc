"""A kept vote of a billed month that went with its service to another account (`premium set
--account`) is booked as a correction with a line for each company: each reads the move in its own
words, never the other company's account name ("moved to another account", "moved here from another
account"), in its billing file and on its panel's premium page; the operator reads the full note.
Before, both lines of both companies read "moved from account acme to account beta, kept for account
acme, billed to account beta".

Real SQLite file, injected clock, January billed by the scheduled job's `bill_month`, February's
files written by billing_reports and read back by the tests' reader, the panel through a real HTTP
client, `premium stats` through the CLI's `main`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from billing_reports import job
from billing_reports.writer import month_dir, write_month
from gateway.cli.main import main
from gateway.config import parse_config
from gateway.premium import handlers
from tests.billing_reader import BillingFile, read
from tests.test_premium import World
from tests.test_premium_corrections import FEB, JAN, TZ, at
from tests.test_premium_stats_corrections import PREMIUM, config_text
from tests.web_helpers import ADMIN, OPERATOR, as_user, password_hash, web_context

NEW = "votes@beta.example"
BETA_ADMIN = "boss@beta.example"
FULL = "moved from account acme to account beta"


async def moved_after_billing(tmp_path: Path) -> World:
    """acme's vote of 30 January, kept (KP123 unconfirmed), billed with January; on 3 February the
    service moved to beta, whose address confirmed: the vote is mailed to beta and booked beta's."""
    w = World(tmp_path)
    w.config = parse_config(config_text(tmp_path), source="test")
    w.now = at(2027, 1, 30, 12)
    beta = w.store.accounts.add_account("beta")
    for email, account, role in (
        (OPERATOR, "acme", "operator"),
        (ADMIN, "acme", "admin"),
        (BETA_ADMIN, "beta", "admin"),
    ):
        w.store.accounts.add_user(email, account, password_hash=password_hash())
        w.store.accounts.set_user(email, role=role)
    sid = w.service(verified=False)
    await w.mo("KP123 kept vote")
    w.now = at(2027, 2, 1, 0, 5)
    await job.bill_month(w.store, w.config, JAN)
    w.now = at(2027, 2, 3, 12)
    w.r.update_service(sid, account_id=beta.id, email=NEW, verified_at=w.now)  # as `premium set` and
    w.r.set_acl(sid, [NEW])  # the confirmation leave it
    assert handlers.forward_awaiting(w.store, w.config, w.r.service(sid)) == 1  # type: ignore[arg-type]
    w.now = at(2027, 2, 10, 8)
    write_month(w.store.path, w.config.state_dir, FEB, TZ, billing_dir=w.config.billing_dir)
    return w


def file_of(w: World, name: str) -> BillingFile:
    return read((month_dir(w.config.state_dir, FEB, w.config.billing_dir) / f"{name}.txt").read_bytes())


async def test_each_company_reads_the_move_without_the_others_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = await moved_after_billing(tmp_path)

    [acme] = [m["reason"] for m in file_of(w, "acme").sms]
    [beta] = [m["reason"] for m in file_of(w, "beta").sms if m["kind"] == "premium-MO"]
    assert "moved to another account" in acme and "beta" not in acme, acme
    assert "moved here from another account" in beta and "acme" not in beta, beta
    assert "premium service KP123 moved" in acme and "premium service KP123 moved here" in beta
    assert acme.startswith("correction of the premium SMS of 2027-01-30") and "\x1f" not in acme + beta

    w.store.db.serve()
    web = web_context(tmp_path, w.store, PREMIUM)
    try:
        async with as_user(web, ADMIN) as c:
            page = (await c.get("/premium?month=2027-02")).text
        assert "moved to another account" in page and "beta" not in page
        async with as_user(web, BETA_ADMIN) as c:
            page = (await c.get("/premium?month=2027-02")).text
        assert "moved here from another account" in page and "acme" not in page
        async with as_user(web, OPERATOR) as c:
            page = (await c.get("/premium?month=2027-02")).text
        assert page.count(FULL) == 2, page  # each line in full, the operator's
        assert "kept for account acme, billed to account beta" in page
        assert "another account" not in page
    finally:
        web.counts.close()
        w.store.close()

    # The operator's summary and the SMS's own note (`mo list`) name both, as before.
    conf = tmp_path / "config.toml"
    conf.write_text(config_text(tmp_path))
    (tmp_path / "db.sqlite").rename(tmp_path / "smsgw.db")
    capsys.readouterr()
    assert main(["-c", str(conf), "premium", "stats", "--month", "2027-02"]) == 0
    out = capsys.readouterr().out
    assert out.count(FULL) == 2 and "another account" not in out, out
    assert main(["-c", str(conf), "mo", "list"]) == 0
    out = capsys.readouterr().out
    assert "kept for account acme, billed to account beta" in out, out
