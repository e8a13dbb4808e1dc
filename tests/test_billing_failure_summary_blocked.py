"""A billing run stopped by a directory where the month's summary goes tells the operator which
directory and how to move it aside, as it does for an account's file (R-5).

`_summary.txt` of the month being a directory, every account's file was written whole and the rename
of the summary failed with "Is a directory", naming the temporary file first: the failure was kept
with a fix of null, and `smsgw status` and the administrator's mail told nobody what to move. A real
daemon on a real SQLite file and a real billing directory, a real relay sink, `smsgw` as its own
process; the fix it names, done, lets `billing run --month` write the month.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from billing_reports import failures
from gateway.config import parse_config
from tests.billing_world import at, cli, prepare
from tests.conftest import free_port, running_gateway, smtp_sink

MONTH = "2026-02"


async def test_a_directory_where_the_summary_goes_is_named_in_the_fix(tmp_path: Path) -> None:
    relay = free_port()
    traffic = {"acme": [at(2026, 2, 10, 12)], "rival": [at(2026, 2, 11, 12)]}
    path, cfg = prepare(tmp_path, relay, last_billed="2026-01", traffic=traffic)
    cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
    in_the_way = cfg.billing_dir / MONTH / "_summary.txt"
    in_the_way.mkdir(parents=True)
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 4, 9, 9)) as gw:
        await gw.until(lambda: "billing" in failures.failures(gw.store.db.conn))
        kept = failures.failures(gw.store.db.conn)["billing"]
        assert kept["month"] == MONTH and "Is a directory" in kept["error"], kept
        assert kept["fix"] == (
            f"{in_the_way} is a directory: move it aside (mv {in_the_way} {in_the_way}.aside)"
        ), kept
        status = await asyncio.to_thread(cli, path, "status")
        line = next(x for x in status.stdout.splitlines() if x.startswith("billing"))
        assert f"{in_the_way} is a directory: move it aside" in line, status.stdout

        in_the_way.rename(in_the_way.with_name("_summary.txt.aside"))  # the fix, as said
        run = await asyncio.to_thread(cli, path, "billing", "run", "--month", MONTH)
        assert run.returncode == 0, run.stdout + run.stderr
        assert in_the_way.is_file() and "billing" not in failures.failures(gw.store.db.conn)
