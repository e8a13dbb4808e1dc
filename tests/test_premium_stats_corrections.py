"""`smsgw premium stats` and the panel's premium page show the corrections booked in a month (a premium
SMS of a billed month moved to another party), so that their totals are the billing files' of the
same month; a company sees only the corrections booked for its own account.

Real SQLite file, injected clock, January billed by the scheduled job's `bill_month`, February's
files written by billing_reports and read back by the tests' reader, the panel through a real HTTP
client, the CLI through its `main`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from billing_reports import job
from billing_reports.writer import SUMMARY, month_dir, write_month
from gateway.cli.main import main
from gateway.config import parse_config
from gateway.premium.stats import Figures, PremiumStats
from tests.billing_reader import BillingFile, grosze, read
from tests.test_premium import BASE, FALLBACK, World
from tests.test_premium_corrections import FEB, JAN, TZ, at, remove, unconfirmed_votes
from tests.web_helpers import ADMIN, OPERATOR, OTHER_ADMIN, as_user, password_hash, web_context

PREMIUM = '[premium]\nnumbers = ["7155", "7355"]\nfallback_address = "premium-ops@example.com"\n'
Totals = tuple[int, int, int, int]  # SMS, parts, price, commission (grosze)


def config_text(tmp_path: Path) -> str:
    return (
        BASE.replace("[gateway]", f'[gateway]\nstate_dir = "{tmp_path}"') + f'fallback_address = "{FALLBACK}"'
    )


async def moved_in_february(tmp_path: Path) -> World:
    """acme's two votes of 30 January (3.00 / 1.10 each, kept: KP123 never confirmed) billed with
    January, then KP123 removed on 3 February: February books them back from acme to no service.
    February also has a vote of acme's KP456 and one of rival's KP777, received then."""
    w = World(tmp_path)
    w.config = parse_config(config_text(tmp_path), source="test")
    rival = w.store.accounts.add_account("rival")
    for email, account in ((OPERATOR, "acme"), (ADMIN, "acme"), (OTHER_ADMIN, "rival")):
        w.store.accounts.add_user(email, account, password_hash=password_hash())
        w.store.accounts.set_user(email, role="operator" if email == OPERATOR else "admin")
    sid = await unconfirmed_votes(w)
    w.now = at(2027, 2, 1, 0, 5)
    await job.bill_month(w.store, w.config, JAN)
    w.now = at(2027, 2, 2, 9)
    w.service("KP456")
    await w.mo("KP456 vote", source="+48601000009")
    rival_sid = w.r.add_service("KP777", rival.id, "konkurs@rival.example", [], ["konkurs@rival.example"])
    w.r.update_service(rival_sid, verified_at=w.now)
    await w.mo("KP777 vote", to="7155", source="+48602000002")
    w.now = at(2027, 2, 3, 12)
    remove(w, sid)
    w.now = at(2027, 2, 10, 8)
    write_month(w.store.path, w.config.state_dir, FEB, TZ, billing_dir=w.config.billing_dir)
    return w


def file_of(w: World, name: str) -> BillingFile:
    return read((month_dir(w.config.state_dir, FEB, w.config.billing_dir) / f"{name}.txt").read_bytes())


def premium_total(f: BillingFile) -> Totals:
    t = f.totals[("kind", "premium-MO")]
    return int(t["sms"]), int(t["parts"]), grosze(t["price_pln"]), grosze(t["commission_pln"])


def summary_total(w: World) -> Totals:
    text = (month_dir(w.config.state_dir, FEB, w.config.billing_dir) / SUMMARY).read_text()
    row = next(r.split("\t") for r in text.splitlines() if r.startswith("total\t"))
    return int(row[1]), int(row[2]), grosze(row[-3]), grosze(row[-2])


def page_total(page: str) -> Totals:
    m = re.search(r'<tr class="total"><th colspan="2">total</th>' + r"<td>([^<]*)</td>" * 4, page)
    assert m, page
    return int(m[1]), int(m[2]), grosze(m[3]), grosze(m[4])


async def test_a_months_figures_hold_the_corrections_booked_in_it_as_its_billing_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = await moved_in_february(tmp_path)
    acme, rival = w.account.id, w.store.accounts.get_account("rival").id
    stats = PremiumStats(w.store.db, w.store.clock)
    start, end = FEB.bounds(TZ)
    back = Figures("KP123", True, "7355", -2, -2, -600, -220)
    given = Figures(None, False, "7355", 2, 2, 600, 0)
    assert stats.moved(start, end) == [back, given]
    assert stats.moved(start, end, acme) == [back]
    assert stats.moved(start, end, rival) == []
    assert stats.moved(*JAN.bounds(TZ)) == []  # January stays as billed
    listed = stats.corrections(start, end, acme)
    assert [(c.sms, c.price, c.commission, c.status) for c in listed] == [(-1, -300, -110, "pending")] * 2
    assert all("moved from account acme to no service" in c.note for c in listed)

    # acme's file: its KP456 vote (3.00 / 1.10) less the two taken back.
    assert premium_total(file_of(w, "acme")) == (1 - 2, 1 - 2, 300 - 600, 110 - 220)
    w.store.db.serve()
    web = web_context(tmp_path, w.store, PREMIUM)
    try:
        async with as_user(web, ADMIN) as c:
            page = (await c.get("/premium?month=2027-02")).text
        assert page_total(page) == premium_total(file_of(w, "acme"))
        assert '<tr class="correction"><td>KP123 (removed)</td><td>7355</td><td>-2</td><td>-2</td>' in page
        assert page.count("moved from account acme to no service") == 2  # each line, with its SMS
        assert "(none)" not in page and "KP777" not in page  # no service's side, nor rival's
        async with as_user(web, OTHER_ADMIN) as c:
            page = (await c.get("/premium?month=2027-02")).text
        assert page_total(page) == premium_total(file_of(w, "rival")) == (1, 1, 100, 32)
        assert 'class="correction"' not in page and 'id="corrections"' not in page
        assert "KP123" not in page and "moved from" not in page
        async with as_user(web, OPERATOR) as c:
            page = (await c.get("/premium?month=2027-02")).text
        assert page_total(page) == summary_total(w)
        assert '<tr class="correction"><td>(none)</td><td>7355</td><td>2</td><td>2</td><td>6.00</td>' in page
    finally:
        web.counts.close()
        w.store.close()

    conf = tmp_path / "config.toml"
    conf.write_text(config_text(tmp_path))
    (tmp_path / "db.sqlite").rename(tmp_path / "smsgw.db")
    capsys.readouterr()
    assert main(["-c", str(conf), "premium", "stats", "--month", "2027-02"]) == 0
    out = [line.split() for line in capsys.readouterr().out.splitlines() if not line.startswith("20")]
    total = next(line for line in out if line[0] == "total")
    assert (int(total[1]), int(total[2]), grosze(total[3]), grosze(total[4])) == summary_total(w)
    assert ["KP123*", "7355", "-2", "-2", "-6.00", "-2.20"] in out
    assert ["(none)", "7355", "2", "2", "6.00", "0.00"] in out
    # Each SMS twice: taken back from acme, given to no service.
    assert sum("moved from account acme to no service" in " ".join(line) for line in out) == 4
