"""A billing run that fails is kept until one succeeds, and said: `smsgw status` names it and exits 1
(--json has it), the administrator is mailed once a day, /healthz and the panel's billing page say it,
and the run is tried again every hour past the first week of the month.

It was only logged (`billing.failed`): status exited 0, /healthz said ok, the panel said "No billing
files yet", nobody was mailed, and after the 7th no run tried again until the next month, while the
month owed held the retention purge and the database grew past the retention.

A real daemon on a real SQLite file whose billing_dir holds a file where the month's directory goes,
a real relay sink, `smsgw status` as its own process; the panel over real HTTP.
"""

from __future__ import annotations

import json
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from billing_reports import failures
from gateway import housekeeping, scheduler
from gateway.housekeeping import read_status
from gateway.web.app import WebContext
from tests.billing_world import TZ, at, cli, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_dashboard_attention import billing_run_failed
from tests.test_supervision import notify_socket, until
from tests.web_helpers import OPERATOR, as_user
from tests.web_helpers import web as web  # the fixture

MONTH = "2026-02"


def _failure_mails(sink: object) -> list[str]:
    found = []
    for _, _rcpts, raw in sink.messages:  # type: ignore[attr-defined]
        msg = message_from_bytes(raw, policy=policy.default)
        if "billing run failed" in str(msg["Subject"]):
            found.append(str(msg.get_body(("plain",)).get_content()))  # type: ignore[union-attr]
    return found


async def test_a_failing_billing_run_is_kept_said_by_status_and_mailed_once_until_a_run_succeeds(
    tmp_path: Path,
) -> None:
    relay = free_port()
    config, cfg = prepare(tmp_path, relay, last_billed="2026-01", traffic={"acme": [at(2026, 2, 10, 12)]})
    cfg.billing_dir.mkdir(parents=True, exist_ok=True)
    blocker = cfg.billing_dir / MONTH
    blocker.write_text("not a directory\n")
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: at(2026, 4, 9, 9)) as gw:
        await gw.until(lambda: "billing" in failures.failures(gw.store.db.conn))
        kept = failures.failures(gw.store.db.conn)["billing"]
        assert kept["month"] == MONTH and "NotADirectoryError" in kept["error"], kept
        assert kept["fix"].startswith(f"{blocker} is a file, not a directory"), kept

        shown = cli(config, "status")
        assert shown.returncode == 1, shown.stdout + shown.stderr
        line = next(x for x in shown.stdout.splitlines() if x.startswith("billing"))
        assert f"billing run of {MONTH} has failed since" in line and "is a file, not a directory" in line
        assert "retention purge is held" in line
        report = json.loads(cli(config, "status", "--json").stdout)
        assert report["failed_jobs"]["billing"]["month"] == MONTH

        await gw.until(lambda: len(_failure_mails(sink)) == 1)
        assert f"{blocker} is a file" in _failure_mails(sink)[0]
        await scheduler.bill(gw.store, cfg)  # the next hourly run, the same day: kept, not mailed again
        assert failures.failures(gw.store.db.conn)["billing"]["since"] == kept["since"]
        mailed = gw.store.db.conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE kind = ?", (failures.KIND_MAIL,)
        ).fetchone()[0]
        assert mailed == 1

        blocker.unlink()
        await scheduler.bill(gw.store, cfg)
        assert last_billed(gw.store) == "2026-03"
        assert failures.failures(gw.store.db.conn) == {}
    after = cli(config, "status", "--json")
    assert json.loads(after.stdout)["failed_jobs"] == {}


async def test_systemds_status_line_names_a_failing_billing_run_until_one_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `systemctl status` read "queued 0, links up 0/1, outbox 0" while every hourly run failed.
    monkeypatch.setattr(housekeeping, "STATUS_INTERVAL", 0.1)
    notify = tmp_path / "notify"
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify))
    relay = free_port()
    config, cfg = prepare(tmp_path, relay, last_billed="2026-01", traffic={"acme": [at(2026, 2, 10, 12)]})
    cfg.billing_dir.mkdir(parents=True, exist_ok=True)
    blocker = cfg.billing_dir / MONTH
    blocker.write_text("not a directory\n")
    said = f"billing run of {MONTH} has failed"
    async with smtp_sink(relay), notify_socket(notify) as received:
        async with running_gateway(cfg, clock=lambda: at(2026, 4, 9, 9)) as gw:
            await until(lambda: any(said in m for m in received))
            line = next(m for m in received if said in m)
            assert line.startswith("STATUS=queued ") and line.endswith(f", {said}"), line
            assert str(blocker) not in line  # the error and the fix are status's, not the journal's
            assert (read_status(cfg.state_dir) or {})["failed_jobs"] == {"billing": said}
            assert said in cli(config, "status").stdout  # the same words

            blocker.unlink()
            await scheduler.bill(gw.store, cfg)
            assert failures.failures(gw.store.db.conn) == {}
            await until(lambda: said not in received[-1] and received[-1].startswith("STATUS=queued "))
            await until(lambda: "failed_jobs" not in (read_status(cfg.state_dir) or {}))


def test_the_billing_run_is_tried_again_every_hour_past_the_first_week() -> None:
    trigger = scheduler.billing_trigger("Europe/Warsaw")
    now = datetime(2026, 3, 9, 12, 20, tzinfo=TZ)
    assert trigger.get_next_fire_time(None, now) == datetime(2026, 3, 9, 13, 5, tzinfo=TZ)


async def test_healthz_and_the_billing_page_say_a_failing_run(web: WebContext) -> None:
    blocker = await billing_run_failed(web.store, web.config)
    async with as_user(web, OPERATOR) as c:
        health = await c.get("/healthz")
        assert health.status_code == 200 and "warning: billing run failing" in health.text, health.text
        assert str(blocker) not in health.text  # public: no paths
        page = (await c.get("/billing")).text
        assert 'id="billing-failed"' in page and "billing run of 2099-01 has failed" in page, page
        assert "is a file, not a directory" in page


async def test_a_failing_retention_purge_is_kept_and_said_until_a_purge_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A purge that cannot delete (a database error mid-purge; no real peer gives one on demand, so
    # the purge's own step raises it) is kept as the billing's is.
    import sqlite3

    from gateway import retentionpurge

    relay = free_port()
    config, cfg = prepare(tmp_path, relay, last_billed="2026-03", traffic={"acme": [at(2026, 2, 10, 12)]})
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: at(2026, 4, 9, 9)) as gw:

        async def broken(*_a: object, **_kw: object) -> int:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(retentionpurge, "purge_before", broken)
        await scheduler.purge(gw.store, cfg)
        assert failures.failures(gw.store.db.conn)["purge"]["error"] == "OperationalError: disk I/O error"
        shown = cli(config, "status")
        assert shown.returncode == 1
        assert "retention purge has failed since" in shown.stdout, shown.stdout
        monkeypatch.undo()
        await scheduler.purge(gw.store, cfg)
        assert "purge" not in failures.failures(gw.store.db.conn)
