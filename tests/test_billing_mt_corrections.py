"""An MT of a billed month whose outcome changes after the bill is billed once, as correction lines
in the month it changed in: a report after the month's run, an admin's retry (real daemon, simulator
over TCP, SQLite file, injected clock)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports import job, mtlate
from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway.config import parse_config
from smsc.simulator.control import send_command
from tests.billing_reader import read
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_billing_loop import loop_config

TZ = ZoneInfo("Europe/Warsaw")


def at(*a: int) -> float:
    return datetime(*a, tzinfo=TZ).timestamp()


def _config(tmp_path: Path) -> tuple[object, int]:
    relay = free_port()
    path, _ = loop_config(tmp_path, relay)
    text = path.read_text().replace("dlr_delay_seconds = 0", "dlr_delay_seconds = 100000")
    path.write_text(text)
    return parse_config(text, source="test", base_dir=tmp_path), relay


def _sms(cfg: object, month: str) -> list[tuple[str, str, str]]:
    got = read((cfg.state_dir / "billing" / month / "acme.txt").read_bytes())  # type: ignore[attr-defined]
    return [(r["to"], r["parts"], r["status"]) for r in got.sms]


async def test_a_report_after_the_bill_is_a_correction_in_its_month(tmp_path: Path) -> None:
    cfg, relay = _config(tmp_path)
    now = [at(2027, 3, 31, 23, 59, 58)]
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: now[0]) as gw:
        db, control = gw.store.db.conn, gw.daemon.simulator.control_port
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="A at month end"))).error is None
        await gw.until(
            lambda: db.execute("SELECT COUNT(*) FROM parts WHERE state='submitted'").fetchone()[0] == 1
        )
        now[0] = at(2027, 4, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 3)]
        mailed = (cfg.state_dir / "billing" / "2027-03" / "acme.txt").read_bytes()
        assert _sms(cfg, "2027-03") == [("+48601123456", "1", "pending")]
        now[0] = at(2027, 4, 1, 0, 10)
        assert (
            await send_command("127.0.0.1", control, {"op": "report", "last": True, "status": "delivered"})
        )["ok"]
        await gw.until(lambda: db.execute("SELECT state FROM messages").fetchone()[0] == "delivered")
        now[0] = at(2027, 5, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 4)]
        assert _sms(cfg, "2027-04") == [("+48601123456", "-1", "pending"), ("+48601123456", "1", "delivered")]
        april = read((cfg.state_dir / "billing" / "2027-04" / "acme.txt").read_bytes())
        assert "(billed in 2027-03): pending then delivered" in april.sms[0]["reason"]
        # March written again is the file mailed, byte for byte.
        await asyncio.to_thread(write_month, cfg.db_path, cfg.state_dir, Month(2027, 3), TZ)
        assert (cfg.state_dir / "billing" / "2027-03" / "acme.txt").read_bytes() == mailed


async def test_a_retry_after_the_bill_books_the_parts_sent_again(tmp_path: Path) -> None:
    cfg, relay = _config(tmp_path)
    now = [at(2027, 3, 31, 23, 59, 59)]
    async with smtp_sink(relay), running_gateway(cfg, clock=lambda: now[0]) as gw:
        db, control = gw.store.db.conn, gw.daemon.simulator.control_port
        assert (await gw.send(mail(f"601123457@{DOMAIN}", body="B " + "x" * 200))).error is None
        await gw.until(
            lambda: db.execute("SELECT COUNT(*) FROM parts WHERE state='submitted'").fetchone()[0] == 2
        )
        (mid,) = db.execute("SELECT id FROM messages").fetchone()
        for (sid,) in db.execute("SELECT smsc_id FROM parts").fetchall():
            cmd = {"op": "report", "message_id": sid, "status": "failed", "error": 1}
            assert (await send_command("127.0.0.1", control, cmd))["ok"]
        await gw.until(lambda: db.execute("SELECT state FROM messages").fetchone()[0] == "failed")
        now[0] = at(2027, 4, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 3)]
        mailed = (cfg.state_dir / "billing" / "2027-03" / "acme.txt").read_bytes()
        assert _sms(cfg, "2027-03") == [("+48601123457", "2", "failed")]
        now[0] = at(2027, 4, 2, 10)
        await gw.store.write(lambda: gw.store.admin.retry_message(mid, before_reset=mtlate.retried))
        gw.daemon.dispatcher.wake()
        sent = "SELECT COUNT(*) FROM parts WHERE state='submitted'"
        await gw.until(lambda: db.execute(sent).fetchone()[0] == 2)
        for (sid,) in db.execute("SELECT smsc_id FROM parts").fetchall():
            assert (
                await send_command(
                    "127.0.0.1", control, {"op": "report", "message_id": sid, "status": "delivered"}
                )
            )["ok"]
        await gw.until(lambda: db.execute("SELECT state FROM messages").fetchone()[0] == "delivered")
        now[0] = at(2027, 5, 1, 0, 5)
        assert await job.run_due(gw.store, cfg) == [Month(2027, 4)]
        april = read((cfg.state_dir / "billing" / "2027-04" / "acme.txt").read_bytes())
        # The two parts sent again are on April's bill, and the SMS counts delivered, no longer failed.
        assert sum(int(r["parts"]) for r in april.sms) == 2
        assert sum(int(r["parts"]) for r in april.sms if r["status"] == "delivered") == 4
        assert [r["status"] for r in april.sms if r["parts"].startswith("-")] == ["failed", "pending"]
        assert all("(billed in 2027-03)" in r["reason"] for r in april.sms)
        await asyncio.to_thread(write_month, cfg.db_path, cfg.state_dir, Month(2027, 3), TZ)
        assert (cfg.state_dir / "billing" / "2027-03" / "acme.txt").read_bytes() == mailed
