"""The hourly billing run that finds nothing due says so at INFO once a day, or when the month billed
last changed; else at DEBUG.

The run is tried every hour since a failed one is kept and tried again, and `billing.up_to_date`
came at INFO every hour: 24 lines a day in the journal saying nothing new. A real process with the
daemon's logging (JSON lines on stderr, at INFO as `smsgw run` logs) runs the job on a real SQLite
file under a clock it moves, and its log is read back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.billing_world import ROOT, at, prepare
from tests.conftest import free_port

_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from billing_reports.repo import LAST_BILLED, BillingRepo
    from gateway import scheduler
    from gateway.config import parse_config
    from gateway.logging import configure
    from gateway.store.db import Store

    configure(json=True, level=sys.argv[2])
    path = Path(sys.argv[1])
    cfg = parse_config(path.read_text(), source="test", base_dir=path.parent)
    now = [0.0]
    store = Store.open(cfg.db_path, clock=lambda: now[0])
    store.db.serve()

    async def main() -> None:
        for when in sys.argv[3:]:
            if when == "billed":  # the month billed last changes (a run by hand): said at once
                await store.write(lambda: BillingRepo(store.db, store.clock).put(LAST_BILLED, "2026-03"))
                continue
            now[0] = float(when)
            await scheduler.bill(store, cfg)

    asyncio.run(main())
    store.close()
    """
)


def _logged(tmp_path: Path, level: str) -> list[tuple[str, str | None]]:
    """The job's `billing.up_to_date` lines: (level, last_billed), in order."""
    config, _cfg = prepare(tmp_path, free_port(), last_billed="2026-02", traffic={})
    hours = [at(2026, 3, 30, h, 5) for h in (9, 10, 11, 12)]  # March not ended: nothing due
    times = [*hours, at(2026, 3, 31, 0, 5), at(2026, 3, 31, 1, 5), "billed", at(2026, 3, 31, 2, 5)]
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(config), level, *map(str, times)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stderr.splitlines() if x.startswith("{")]
    return [(x["level"], x.get("last_billed")) for x in lines if x["event"] == "billing.up_to_date"]


def test_up_to_date_is_said_at_info_once_a_day_or_when_the_month_billed_last_changes(
    tmp_path: Path,
) -> None:
    # Four hourly runs on the 30th, two on the 31st, one after a month was billed by hand.
    assert _logged(tmp_path, "INFO") == [("info", "2026-02"), ("info", "2026-02"), ("info", "2026-03")]


def test_the_runs_between_are_said_at_debug(tmp_path: Path) -> None:
    said = _logged(tmp_path, "DEBUG")
    assert [x[0] for x in said] == ["info", "debug", "debug", "debug", "info", "debug", "info"], said
