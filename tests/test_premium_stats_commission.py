"""`smsgw premium stats`, the panel's premium page and the monthly summary agree on what is owed
for premium MOs no service took: nothing, as there is no client to pay it to. So are the votes of a
service removed before its address confirmed, which went to the operator's fallback."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month
from billing_reports.render import pln
from billing_reports.writer import write_month
from gateway.premium import clistats as premium_cli
from gateway.premium import handlers
from gateway.premium.stats import Figures, PremiumStats
from gateway.web import services
from tests.test_premium import FALLBACK, T0, World


async def test_premium_stats_owe_no_commission_for_mos_no_service_took(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote")
    await w.mo("KPZZZ vote")  # no such password: the fallback gets it
    rows = PremiumStats(w.store.db, w.store.clock).traffic(T0 - 86400, T0 + 86400)
    # 7355 is 3.00 PLN a part with 1.10 commission, in grosze: the phone paid for both.
    assert rows == [
        Figures("KP123", False, "7355", 1, 1, 300, 110),
        Figures(None, False, "7355", 1, 1, 300, 0),
    ]


async def test_votes_of_a_service_removed_before_it_confirmed_owe_no_commission(tmp_path: Path) -> None:
    # Its kept votes went to the operator's fallback, yet stayed the service's and its account's:
    # the client was credited 1.10 PLN a vote in its billing file and in `premium stats`.
    w = World(tmp_path)
    sid = w.service(verified=False)
    await w.mo("KP123 vote A")
    await w.mo("KP123 vote B")
    with w.store.db.transaction():
        w.r.update_service(sid, removed_at=w.now)
        svc = w.r.service(sid)
        assert svc is not None
        handlers.release_awaiting(
            w.store, w.config, svc, "the service was removed before its address confirmed"
        )
    assert [row[:3] for row in w.premium_mo()] == [("fallback", None, "KP123")] * 2
    assert [rcpt for kind, _f, rcpt, _m in w.outbox() if kind == "premium-fallback"] == [FALLBACK] * 2
    assert PremiumStats(w.store.db, w.store.clock).traffic(T0 - 86400, T0 + 86400) == [
        Figures(None, False, "7355", 2, 2, 600, 0)
    ]
    tz = ZoneInfo("Europe/Warsaw")
    files = write_month(w.store.path, tmp_path, Month.containing(w.now, tz), tz)
    assert files.summary is not None
    rows = {r.split("\t")[0]: r.split("\t") for r in files.summary.read_text().splitlines()}
    assert rows["acme"][1] == "0" and rows["acme"][-3:-1] == ["0.00", "0.00"]
    assert rows["(premium MO without a service)"][1:3] == ["2", "2"]
    assert rows["(premium MO without a service)"][-3:-1] == ["6.00", "0.00"]


def test_every_money_printer_shows_a_negative_amount_right() -> None:
    # `premium stats` and the panel had their own grosze-to-PLN, which printed -1 grosz as "-1.99";
    # a correction (a vote moved after its month was billed) is a negative amount.
    for printer in (pln, premium_cli.pln, services.pln):
        assert [printer(g) for g in (-1, -110, 0, 599)] == ["-0.01", "-1.10", "0.00", "5.99"]
