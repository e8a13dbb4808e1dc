"""MT corrections against the purge, a freed id, parts that never went and a retry before the bill
(real daemon, simulator over TCP, SQLite file, injected clock)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from billing_reports import job, mtlate
from billing_reports.monthly import Month
from gateway import scheduler
from gateway.config import parse_config
from smsc.simulator.control import send_command
from tests.billing_reader import read
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_billing_loop import loop_config

TZ = ZoneInfo("Europe/Warsaw")
SUBMITTED = "SELECT COUNT(*) FROM parts WHERE state='submitted'"
KEYS = "SELECT key FROM billing_state WHERE key LIKE 'mt_retried/%'"


def at(*a: int) -> float:
    return datetime(*a, tzinfo=TZ).timestamp()


def _config(tmp_path: Path, *, slow_reports: bool = True) -> Any:
    relay = free_port()
    path, _ = loop_config(tmp_path, relay)
    text = path.read_text()
    if slow_reports:
        text = text.replace("dlr_delay_seconds = 0", "dlr_delay_seconds = 100000")
    cfg = parse_config(text, source="test", base_dir=tmp_path)
    return cfg, relay


def _sms(cfg: Any, month: str) -> list[dict[str, str]]:
    return read((cfg.state_dir / "billing" / month / "acme.txt").read_bytes()).sms  # type: ignore[no-any-return]


async def _report(gw: Any, status: str) -> None:
    """The report of the one part submitted, and the message ended by it."""
    db = gw.store.db.conn
    await gw.until(lambda: db.execute(SUBMITTED).fetchone()[0] == 1)
    (sid,) = db.execute("SELECT smsc_id FROM parts WHERE state='submitted'").fetchone()
    cmd: dict[str, Any] = {"op": "report", "message_id": sid, "status": status}
    if status == "failed":
        cmd["error"] = 1
    assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, cmd))["ok"]
    await gw.until(lambda: db.execute(SUBMITTED).fetchone()[0] == 0)


async def _retry(gw: Any, mid: int) -> None:
    await gw.store.write(lambda: gw.store.admin.retry_message(mid, before_reset=mtlate.retried))
    gw.daemon.dispatcher.wake()


async def test_a_part_that_never_reached_the_smsc_is_not_billed_again(tmp_path: Path) -> None:
    cfg, relay = _config(tmp_path, slow_reports=False)
    now = [at(2027, 3, 20, 12)]
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: now[0]) as gw:
        db = gw.store.db.conn
        # +44 goes by a link that never comes up: the part waits, never submitted.
        assert (await gw.send(mail(f"+447911123456@{DOMAIN}", body="never leaves"))).error is None
        await gw.until(lambda: db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1)
        (mid,) = db.execute("SELECT id FROM messages").fetchone()
        await gw.store.write(lambda: gw.store.admin.cancel_message(mid, claimed="end"))
        now[0] = at(2027, 4, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 3)]
        mailed = _sms(cfg, "2027-03")
        now[0] = at(2027, 4, 2, 10)
        await gw.store.write(lambda: gw.store.admin.retry_message(mid, before_reset=mtlate.retried))
        now[0] = at(2027, 4, 3, 10)
        await gw.store.write(lambda: gw.store.admin.cancel_message(mid, claimed="end"))
        now[0] = at(2027, 5, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 4)]
        april = _sms(cfg, "2027-04")
        assert sum(int(r["parts"]) for r in mailed + april) == 1
        got = [(r["parts"], r["status"]) for r in april]
        assert got == [("-1", "failed"), ("1", "pending"), ("-1", "pending"), ("1", "failed")]
        assert "queued again by a retry on 2027-04-02 10:00:00" in april[1]["reason"]
        assert "0 part(s) queued again by the retry reached the SMSC" in april[3]["reason"]


async def test_the_purge_keeps_an_sms_that_ended_in_a_month_not_billed(tmp_path: Path) -> None:
    cfg, relay = _config(tmp_path)
    assert cfg.gateway.retention_days == 90
    now = [at(2027, 1, 10, 12)]
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: now[0]) as gw:
        db = gw.store.db.conn
        assert (await gw.send(mail(f"601123457@{DOMAIN}", body="fails first"))).error is None
        await _report(gw, "failed")
        (mid,) = db.execute("SELECT id FROM messages").fetchone()
        now[0] = at(2027, 4, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 1), Month(2027, 2), Month(2027, 3)]
        now[0] = at(2027, 4, 8, 10)  # 88 days after: the admin retries it, it goes and is delivered
        await _retry(gw, mid)
        await _report(gw, "delivered")
        now[0] = at(2027, 4, 12, 3)  # the nightly purge: the mail is past the retention
        assert await scheduler.purge(gw.store, cfg) == 0
        assert db.execute(KEYS).fetchall() == [(f"mt_retried/1/{mid}",)]
        now[0] = at(2027, 5, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 4)]
        april = _sms(cfg, "2027-04")
        assert sum(int(r["parts"]) for r in april) == 1  # the part sent again
        assert [(r["parts"], r["status"]) for r in april][-1] == ("2", "delivered")
        now[0] = at(2027, 5, 2, 3)  # April billed: the mail goes, and its retry's record with it
        assert await scheduler.purge(gw.store, cfg) == 1
        assert db.execute(KEYS).fetchall() == []


async def test_an_id_given_again_after_a_purge_inherits_no_retry(tmp_path: Path) -> None:
    cfg, relay = _config(tmp_path)
    now = [at(2027, 1, 10, 12)]
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: now[0]) as gw:
        db = gw.store.db.conn
        assert (await gw.send(mail(f"601123457@{DOMAIN}", body="fails first"))).error is None
        await _report(gw, "failed")
        (mid,) = db.execute("SELECT id FROM messages").fetchone()
        now[0] = at(2027, 4, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 1), Month(2027, 2), Month(2027, 3)]
        now[0] = at(2027, 4, 8, 10)
        await _retry(gw, mid)
        await _report(gw, "delivered")
        now[0] = at(2027, 5, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 4)]
        now[0] = at(2027, 5, 2, 3)
        assert await scheduler.purge(gw.store, cfg) == 1
        assert db.execute(KEYS).fetchall() == []  # gone with the SMS
        now[0] = at(2027, 5, 20, 12)  # a new SMS: the emptied table gives it the same id again
        assert (await gw.send(mail(f"601999888@{DOMAIN}", body="new one"))).error is None
        await _report(gw, "delivered")
        assert db.execute("SELECT id FROM messages").fetchone()[0] == mid
        # A record left of another SMS of that id (a key kept by a version before this one's purge).
        old = [{"r": at(2027, 4, 8, 10), "c": at(2027, 1, 10, 12), "b": "failed", "bwhy": "x", "p": 1,
                "n": 1, "s": "failed", "why": "x", "f": at(2027, 1, 10, 12)}]  # fmt: skip
        stale = (f"mt_retried/1/{mid}", json.dumps(old))
        await gw.store.write(lambda: db.execute("INSERT INTO billing_state VALUES (?, ?)", stale))
        now[0] = at(2027, 6, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 5)]
        assert [(r["to"], r["parts"], r["status"]) for r in _sms(cfg, "2027-05")] == [
            ("+48601999888", "1", "delivered")
        ]


async def test_a_retry_before_the_bill_is_on_the_bill(tmp_path: Path) -> None:
    cfg, relay = _config(tmp_path)
    now = [at(2027, 3, 10, 12)]
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: now[0]) as gw:
        db = gw.store.db.conn
        assert (await gw.send(mail(f"601123457@{DOMAIN}", body="fails first"))).error is None
        await _report(gw, "failed")
        (mid,) = db.execute("SELECT id FROM messages").fetchone()
        now[0] = at(2027, 3, 11, 10)
        await _retry(gw, mid)
        await _report(gw, "delivered")
        now[0] = at(2027, 4, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 3)]
        assert [(r["parts"], r["status"]) for r in _sms(cfg, "2027-03")] == [("2", "delivered")]
        now[0] = at(2027, 5, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 4)]
        assert _sms(cfg, "2027-04") == []


def test_billing_run_send_forgets_the_bill_time_only_when_nothing_went(tmp_path: Path) -> None:
    from gateway.cli.main import main
    from tests.test_billing import add_account, mt, setup

    _cfg, store, _, path = setup(tmp_path, at(2026, 2, 1))
    mt(store, add_account(store), at(2026, 2, 3))
    c = ["-c", str(path)]
    as_of = "SELECT COUNT(*) FROM billing_state WHERE key = 'mt_as_of/2026-02'"
    (tmp_path / "state" / "billing").mkdir(parents=True, exist_ok=True)
    (tmp_path / "state" / "billing" / "2026-02").write_text("in the way")  # the month cannot be written
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "acme", "--send"]) == 1
    assert store.db.conn.execute(as_of).fetchone()[0] == 0  # nothing went out billed as of it
    (tmp_path / "state" / "billing" / "2026-02").unlink()
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "acme", "--send"]) == 0
    assert store.db.conn.execute(as_of).fetchone()[0] == 1  # acme's file went out as of it
