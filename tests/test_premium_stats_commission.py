"""`smsgw premium stats`, the panel's premium page and the monthly summary agree on what is owed
for premium MOs no service took: nothing, as there is no client to pay it to."""

from __future__ import annotations

from pathlib import Path

from gateway.web.repo import PanelRepo
from tests.test_premium import T0, World


async def test_premium_stats_owe_no_commission_for_mos_no_service_took(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote")
    await w.mo("KPZZZ vote")  # no such password: the fallback gets it
    rows = w.r.stats(T0 - 86400, T0 + 86400)
    # 7355 is 3.00 PLN a part with 1.10 commission, in grosze: the phone paid for both.
    assert rows == [("KP123", "7355", 1, 1, 300, 110), (None, "7355", 1, 1, 300, 0)]
    panel = PanelRepo(w.store.db, w.store.clock).premium_figures(T0 - 86400, T0 + 86400, None)
    assert [row[3:] for row in panel] == [(1, 1, 300, 110), (1, 1, 300, 0)]
