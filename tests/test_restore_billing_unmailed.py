"""`smsgw restore` over a lost database after a month's files were written but never mailed (a hand
run without `--send`): whole files on disk were taken as billed and mailed, the daemon started with
the month billed, and nobody was ever sent its bill, unsaid. Files with no record are also what a
release before 0.2.39 left of a month it mailed: the restore says both, and the command that mails
it. Real CLI processes, the real daemon, a real SMTP sink for the relay, real SQLite files.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from billing_reports.mailedrecord import RECORD
from tests.billing_world import at, billing_mails, cli, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_restore_billing_crash import due_now
from tests.test_restore_billing_lost import billed_march, lose

NOW = at(2026, 4, 2, 9)


async def test_a_month_written_by_hand_and_never_mailed_is_said_and_mailed_by_the_command_named(
    tmp_path: Path,
) -> None:
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic={"acme": [at(2026, 3, 2, 8)]})
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    res = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03")  # no --send
    assert res.returncode == 0, res.stderr
    march = cfg.billing_dir / "2026-03"
    assert (march / "acme.txt").exists() and not (march / RECORD).exists()
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    # No record is also what a release before 0.2.39 left of a month it mailed: never mailed again
    # unasked; the line says both and the command that mails it.
    assert (
        f"the files of 2026-03 on disk have no record that their mails were queued ({RECORD}): from a"
        " release before 0.2.39, which mailed them and kept none, or from a run without --send or one"
        " killed before it queued them, which mailed nothing: taken as done, not mailed again"
    ) in res.stdout, res.stdout
    assert "`smsgw billing run --month 2026-03 --send --again`" in res.stdout, res.stdout
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, clock=lambda: NOW) as gw:
            await gw.until(lambda: last_billed(gw.store) == "2026-03")
    assert billing_mails(sink) == []
    res = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03", "--send", "--again")
    assert res.returncode == 0, res.stderr
    due_now(cfg.db_path)
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, clock=lambda: NOW) as gw:
            await gw.until(lambda: len(billing_mails(sink)) == 3)
    assert sorted(m.filename for m in billing_mails(sink)) == [
        "2026-03-acme.txt",
        "2026-03-acme.txt",
        "2026-03-summary.txt",
    ]


async def test_the_run_that_mails_a_month_records_its_marks_beside_the_files(tmp_path: Path) -> None:
    _path, cfg, _backup, _relay = await billed_march(tmp_path)
    text = (cfg.billing_dir / "2026-03" / RECORD).read_text()
    assert [line.split("\t")[0] for line in text.splitlines()[1:]] == ["1", "summary"], text


async def test_a_mailed_month_not_taken_keeps_its_mailed_files_before_it_is_mailed_again(
    tmp_path: Path,
) -> None:
    path, cfg, backup, _relay = await billed_march(tmp_path)
    march = cfg.billing_dir / "2026-03"
    summary = (march / "_summary.txt").read_bytes()
    acme = march / "acme.txt"
    acme.write_bytes(acme.read_bytes()[:-20])  # cut short: the month is not whole
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "are not whole: it is billed again at the next start" in res.stdout, res.stdout
    assert "1 file(s) mailed kept in mailed-*/" in res.stdout, res.stdout
    assert [p.read_bytes() for p in march.glob("mailed-*/_summary.txt")] == [summary]


async def test_a_month_mailed_by_hand_is_taken_as_done_after_a_restore(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic={"acme": [at(2026, 3, 2, 8)]})
    backup = tmp_path / "backup.db"
    assert (res := await asyncio.to_thread(cli, path, "backup", str(backup))).returncode == 0, res.stderr
    res = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03", "--send")
    assert res.returncode == 0, res.stderr
    assert (cfg.billing_dir / "2026-03" / RECORD).exists()
    lose(cfg.db_path, "missing")
    res = await asyncio.to_thread(cli, path, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert "the billing of 2026-03 taken as done from the files in billing_dir" in res.stdout, res.stdout
