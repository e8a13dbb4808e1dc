"""`smsgw status` says a month a restore took as done from files with no `_mailed` record, as long as
the restore's marks stand. Only the restore's own line said it, once: the month may never have been
mailed (a run without `--send`), and nothing after told the operator. The daemon writes the month's
record from those marks at its next start, so it is still said then; `billing run --send --again`
mails it, and ends it. Real CLI processes (backup, restore, status, billing run), the real daemon, a
real SMTP sink, real SQLite files, the billing files on disk.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from structlog.testing import capture_logs

from billing_reports import takenunrecorded
from billing_reports.mailedrecord import RECORD
from billing_reports.repo import mailed_key
from gateway.web.app import WebContext
from tests.billing_world import cli
from tests.conftest import running_gateway, smtp_sink
from tests.test_restore_billing import up_to_date
from tests.test_restore_billing_before_record import as_before_the_record
from tests.test_restore_billing_lost import NOW, billed_march, lose
from tests.web_helpers import ADMIN, OPERATOR, as_user
from tests.web_helpers import web as web  # the fixture

SAID = "billing   2026-03 taken as done by a restore from its files on disk, which have no record that"


async def test_status_says_a_month_taken_without_a_record_until_it_is_mailed_again(tmp_path: Path) -> None:
    path, cfg, backup, relay = await billed_march(tmp_path)
    march = cfg.billing_dir / "2026-03"
    as_before_the_record(march)
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr

    res = await asyncio.to_thread(cli, path, "status")
    assert SAID in res.stdout, res.stdout
    assert "`smsgw billing run --month 2026-03 --send --again` bills that month again" in res.stdout
    res = await asyncio.to_thread(cli, path, "status", "--json")
    [taken] = json.loads(res.stdout)["billing_taken_unrecorded"]
    assert taken["month"] == "2026-03", taken

    async with smtp_sink(relay):
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: NOW) as gw:
                await up_to_date(logs, gw)
    assert (march / RECORD).exists()  # written from the restore's marks: no word of the doubt in it
    res = await asyncio.to_thread(cli, path, "status")
    assert SAID in res.stdout, res.stdout

    res = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03", "--send", "--again")
    assert res.returncode == 0, res.stderr
    res = await asyncio.to_thread(cli, path, "status")
    assert "taken as done" not in res.stdout, res.stdout
    assert (
        json.loads((await asyncio.to_thread(cli, path, "status", "--json")).stdout)[
            "billing_taken_unrecorded"
        ]
        == []
    )


async def test_a_later_restore_carries_the_month_taken_without_a_record(tmp_path: Path) -> None:
    """Restored again over the database the first restore wrote: its billing state is carried (the
    marks the note is compared with among it), and the note must come with it."""
    path, cfg, backup, _relay = await billed_march(tmp_path)
    as_before_the_record(cfg.billing_dir / "2026-03")
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert SAID in (await asyncio.to_thread(cli, path, "status")).stdout

    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    res = await asyncio.to_thread(cli, path, "status")
    assert SAID in res.stdout, res.stdout
    res = await asyncio.to_thread(cli, path, "status", "--json")
    assert [t["month"] for t in json.loads(res.stdout)["billing_taken_unrecorded"]] == ["2026-03"]


async def test_the_billing_page_says_it_to_the_operator_while_the_mark_stands(web: WebContext) -> None:
    conn = web.store.db.conn
    key, mark = mailed_key("2026-03", "summary"), "ab12 1775000000"

    def restored() -> None:
        conn.execute("INSERT INTO billing_state (key, value) VALUES (?, ?)", (key, mark))
        takenunrecorded.note(conn, "2026-03", mark)

    await web.store.write(restored)
    async with as_user(web, OPERATOR) as c:
        page = (await c.get("/billing")).text
    assert 'id="billing-taken-1"' in page and "2026-03 taken as done by a restore" in page, page
    async with as_user(web, ADMIN) as c:  # a company admin: the operator's to settle
        assert "taken as done" not in (await c.get("/billing")).text
    again = "UPDATE billing_state SET value = 'cd34 1775100000' WHERE key = ?"
    await web.store.write(lambda: conn.execute(again, (key,)))  # mailed again: a new mark
    async with as_user(web, OPERATOR) as c:
        assert "taken as done" not in (await c.get("/billing")).text
