"""Monthly billing in the running daemon (issue 12, what its first part left open): the start-up
catch-up of missed month ends, `billing run --send` by hand next to the scheduled run, and a run
that fails between writing the files and queuing their mail. Mail goes through the outbox to a
real SMTP sink; the clock is injected."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from billing_reports import job
from billing_reports.monthly import Month
from gateway import scheduler
from tests.billing_world import TZ, at, billing_mails, cli, last_billed, outbox_rows, prepare
from tests.conftest import free_port, running_gateway, smtp_sink


def on_disk(cfg: Any, month: str, name: str) -> bytes:
    return (cfg.state_dir / "billing" / month / name).read_bytes()  # type: ignore[no-any-return]


async def up_to_date(logs: list[dict[str, Any]], gw: Any) -> None:
    """The start-up billing run found nothing due (the later marker that proves "nothing was mailed")."""
    await gw.until(lambda: any(e["event"] == "billing.up_to_date" for e in logs))


async def test_the_daemon_catches_up_two_missed_month_ends_at_start_and_once(tmp_path: Path) -> None:
    # Last billed: January. The daemon was down over the ends of February and March.
    relay = free_port()
    _, cfg = prepare(
        tmp_path, relay, last_billed="2026-01", traffic={"acme": [at(2026, 2, 14, 12), at(2026, 3, 2, 8)]}
    )
    now = at(2026, 4, 2, 9)
    admin = cfg.mail.admin_address
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, clock=lambda: now) as gw:  # no CLI: the daemon's own start-up run
            await gw.until(lambda: len(billing_mails(sink)) == 6 and last_billed(gw.store) == "2026-03")
        got = billing_mails(sink)
        assert Counter((m.rcpt, m.filename) for m in got) == Counter(
            {
                ("billing@acme.pl", "2026-02-acme.txt"): 1,
                (admin, "2026-02-acme.txt"): 1,
                (admin, "2026-02-summary.txt"): 1,
                ("billing@acme.pl", "2026-03-acme.txt"): 1,
                (admin, "2026-03-acme.txt"): 1,
                (admin, "2026-03-summary.txt"): 1,
            }
        )
        for m in got:  # each mail carries the file written on disk, byte for byte
            month, name = m.filename[:7], m.filename[8:].replace("summary", "_summary")
            assert m.attachment == on_disk(cfg, month, name)

        # A restart (still April): the start-up run finds nothing due and mails nothing.
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=lambda: now) as gw:
                await up_to_date(logs, gw)
                assert outbox_rows(gw.store) == 6
        assert len(billing_mails(sink)) == 6


async def test_send_by_hand_then_the_scheduled_run_mails_each_file_once(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic={"acme": [at(2026, 3, 2, 8)]})
    # The daemon's clock: March has not ended for it yet. (Set to 0 below: the real time, which the
    # command line's queued mails are due by.)
    now = [at(2026, 3, 20, 12)]
    clock = lambda: now[0] or time.time()  # noqa: E731
    async with smtp_sink(relay) as sink:
        with capture_logs() as logs:
            async with running_gateway(cfg, clock=clock) as gw:
                await up_to_date(logs, gw)
                # The administrator mails March by hand while the daemon runs (another process).
                first = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03", "--send")
                assert first.returncode == 0, first.stderr
                assert "3 mail(s) queued" in first.stdout
                assert outbox_rows(gw.store) == 3

                # Again by hand: held back, with the way to mail it anyway.
                second = await asyncio.to_thread(cli, path, "billing", "run", "--month", "2026-03", "--send")
                assert second.returncode == 1
                assert "0 mail(s) queued" in second.stdout
                assert "/acme.txt: 2026-03 was already queued to be mailed on " in second.stderr
                assert "/_summary.txt: 2026-03 was already queued to be mailed" in second.stderr
                assert "--again" in second.stderr
                assert outbox_rows(gw.store) == 3

                # April: the scheduled job bills March and finds every file mailed.
                now[0] = at(2026, 4, 1, 0, 5)
                await scheduler.bill(gw.store, cfg)
                assert last_billed(gw.store) == "2026-03"
                assert outbox_rows(gw.store) == 3

                now[0] = 0
                await gw.until(lambda: len(billing_mails(sink)) == 3, timeout=60)
                again = await asyncio.to_thread(
                    cli, path, "billing", "run", "--month", "2026-03", "--send", "--again"
                )
                assert again.returncode == 0, again.stderr
                assert "3 mail(s) queued" in again.stdout
                await gw.until(lambda: len(billing_mails(sink)) == 6, timeout=60)
                sent = "SELECT COUNT(*) FROM outbox WHERE state = 'sent'"
                await gw.until(lambda: gw.store.db.conn.execute(sent).fetchone()[0] == 6, timeout=60)
    admin = cfg.mail.admin_address
    assert Counter((m.rcpt, m.filename) for m in billing_mails(sink)) == Counter(
        {
            ("billing@acme.pl", "2026-03-acme.txt"): 2,
            (admin, "2026-03-acme.txt"): 2,
            (admin, "2026-03-summary.txt"): 2,
        }
    )


def test_send_by_hand_refuses_a_month_that_has_not_ended(tmp_path: Path) -> None:
    # Mailed now it would be incomplete, and marked mailed the month-end run would skip it.
    path, _ = prepare(tmp_path, free_port(), last_billed=None, traffic={"acme": []})
    current = str(Month.containing(time.time(), TZ))
    res = cli(path, "billing", "run", "--month", current, "--send")
    assert res.returncode == 1
    assert f"{current} has not ended" in res.stderr
    assert cli(path, "billing", "run", "--month", current).returncode == 0  # looking is fine
    assert cli(path, "billing", "run", "--month", "2026-03", "--again").returncode == 2


async def test_a_run_failing_after_the_files_are_written_mails_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = free_port()
    traffic = {"acme": [at(2026, 3, 2, 8)], "beta": [at(2026, 3, 3, 9), at(2026, 3, 4, 10)]}
    _, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic=traffic)
    now = at(2026, 4, 2, 9)
    admin = cfg.mail.admin_address
    failed = threading.Event()
    real = job.account_mails

    def broken(
        cfg: Any, month: Month, f: Any, rcpts: list[str], *a: Any, **kw: Any
    ) -> list[tuple[str, bytes]]:
        if f.account == "beta":  # acme's mails are queued by now, beta's never will be in this run
            failed.set()
            raise OSError("injected: the disk went away")
        return real(cfg, month, f, rcpts, *a, **kw)

    async with smtp_sink(relay) as sink:
        monkeypatch.setattr(job, "account_mails", broken)
        async with running_gateway(cfg, clock=lambda: now) as gw:
            await gw.until(lambda: failed.is_set() and len(billing_mails(sink)) == 2)
            assert last_billed(gw.store) == "2026-02"  # the month is not recorded as billed
        assert on_disk(cfg, "2026-03", "acme.txt") and on_disk(cfg, "2026-03", "beta.txt")
        monkeypatch.undo()

        async with running_gateway(cfg, clock=lambda: now) as gw:  # the restart bills March again
            await gw.until(lambda: last_billed(gw.store) == "2026-03" and len(billing_mails(sink)) == 5)
            assert outbox_rows(gw.store) == 6  # and the administrator's mail of the first run's failure
        got = billing_mails(sink)
        assert Counter((m.rcpt, m.filename) for m in got) == Counter(
            {
                ("billing@acme.pl", "2026-03-acme.txt"): 1,
                (admin, "2026-03-acme.txt"): 1,
                ("billing@beta.pl", "2026-03-beta.txt"): 1,
                (admin, "2026-03-beta.txt"): 1,
                (admin, "2026-03-summary.txt"): 1,
            }
        )
        for m in got:
            if m.filename != "2026-03-summary.txt":
                assert m.attachment == on_disk(cfg, "2026-03", m.filename[8:])
