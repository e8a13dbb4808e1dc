"""Monthly billing (issue 12) over a real store with an injected clock: month bounds in local time,
a DST month, catch-up after a missed month end, idempotence, the CLI; and the helpers other test
modules import. The purge, per-account files and arguments, and runs again have modules of their
own: test_billing_purge.py, test_billing_accounts.py, test_billing_reruns.py."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing_reports import job
from billing_reports.monthly import Month
from billing_reports.repo import LAST_BILLED, BillingRepo
from billing_reports.writer import write_month
from gateway.cli.main import main
from gateway.config import parse_config
from gateway.scheduler import purge
from gateway.store.db import Store
from tests.billing_reader import read
from tests.conftest import config_text

TZ = ZoneInfo("Europe/Warsaw")


def at(*args: int) -> float:
    return datetime(*args, tzinfo=TZ).timestamp()  # type: ignore[misc]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def setup(tmp_path: Path, now: float, **gateway: Any) -> tuple[Any, Store, Clock, Path]:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775, **gateway))
    cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
    clock = Clock(now)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(cfg.db_path, clock=clock)
    return cfg, store, clock, path


def add_account(store: Store, name: str = "acme") -> int:
    return store.accounts.add_account(name).id


def mt(store: Store, account_id: int, ts: float, state: str = "delivered", parts: int = 1) -> None:
    conn = store.db.conn
    with store.db.transaction():
        email = conn.execute(
            "INSERT INTO emails (account_id, mail_from, text, received_at) VALUES (?,?,?,?)",
            (account_id, "anna@acme.example", "x", ts),
        ).lastrowid
        conn.execute(
            "INSERT INTO messages (email_id, account_id, recipient, source, text, coding, parts_total, state,"
            " created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (email, account_id, "+48601123456", "+48100200300", "x", 0, parts, state, ts, ts + 86400),
        )


def times(cfg: Any, month: str, account: str = "acme") -> list[str]:
    data = (cfg.state_dir / "billing" / month / f"{account}.txt").read_bytes()
    return [f"{r['date']} {r['time']}" for r in read(data).sms]


def test_month_bounds_are_local_midnight(tmp_path: Path) -> None:
    # 23:59:59 on the last day is March; 00:00:00 on the 1st is April (local time, not UTC).
    cfg, store, _, _ = setup(tmp_path, at(2026, 2, 1))
    acme = add_account(store)
    for ts in (at(2026, 2, 28, 23, 59, 59), at(2026, 3, 1), at(2026, 3, 31, 23, 59, 59), at(2026, 4, 1)):
        mt(store, acme, ts)
    write_month(cfg.db_path, cfg.state_dir, Month(2026, 3), TZ)
    assert times(cfg, "2026-03") == ["2026-03-01 00:00:00", "2026-03-31 23:59:59"]
    write_month(cfg.db_path, cfg.state_dir, Month(2026, 4), TZ)
    assert times(cfg, "2026-04") == ["2026-04-01 00:00:00"]


def test_a_dst_month_keeps_every_sms_in_local_order(tmp_path: Path) -> None:
    # October 2026 has 745 hours; 02:30 happens twice on the 25th and both SMS are listed, in order.
    cfg, store, _, _ = setup(tmp_path, at(2026, 9, 1))
    acme = add_account(store)
    first = datetime(2026, 10, 25, 2, 30, tzinfo=TZ, fold=0).timestamp()
    second = datetime(2026, 10, 25, 2, 30, tzinfo=TZ, fold=1).timestamp()
    assert second - first == 3600
    for ts in (second, first, at(2026, 10, 31, 23, 59, 59), at(2026, 10, 1)):
        mt(store, acme, ts)
    write_month(cfg.db_path, cfg.state_dir, Month(2026, 10), TZ)
    data = (cfg.state_dir / "billing" / "2026-10" / "acme.txt").read_bytes()
    assert read(data).header["period"][-1] == "745 hours"
    assert times(cfg, "2026-10") == [
        "2026-10-01 00:00:00",
        "2026-10-25 02:30:00",
        "2026-10-25 02:30:00",
        "2026-10-31 23:59:59",
    ]


async def test_catch_up_after_a_missed_month_end_and_once_only(tmp_path: Path) -> None:
    # The daemon was down over two month ends: the next run bills both, the run after mails nothing.
    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 10))
    acme = add_account(store)
    store.accounts.set_billing_addresses("acme", ["billing@acme.pl"])
    BillingRepo(store.db, store.clock).put(LAST_BILLED, "2026-01")
    mt(store, acme, at(2026, 2, 14, 12))
    mt(store, acme, at(2026, 3, 2, 8), state="failed")
    clock.now = at(2026, 3, 31, 23, 59, 59)  # March has not ended yet
    assert await job.run_due(store, cfg) == [Month(2026, 2)]
    clock.now = at(2026, 4, 20, 9)
    assert await job.run_due(store, cfg) == [Month(2026, 3)]
    outbox = lambda: store.db.conn.execute("SELECT rcpt FROM outbox ORDER BY id").fetchall()  # noqa: E731
    # Per month: the account's file to its address and to the operator, then the summary.
    assert [r[0] for r in outbox()] == ["billing@acme.pl", cfg.mail.admin_address, cfg.mail.admin_address] * 2
    before = (cfg.state_dir / "billing" / "2026-03" / "acme.txt").read_bytes()
    assert await job.run_due(store, cfg) == []
    await job.bill_month(store, cfg, Month(2026, 3))  # a repeat of a billed month: same bytes, no mail
    assert (cfg.state_dir / "billing" / "2026-03" / "acme.txt").read_bytes() == before
    assert len(outbox()) == 6


async def test_a_fresh_installation_bills_nothing_before_its_accounts(tmp_path: Path) -> None:
    # The first start in May has no month to bill: April ended before the installation existed
    # (no file, no entry in `billing list` or the panel). May is billed once it has ended.
    cfg, store, clock, _ = setup(tmp_path, at(2026, 5, 3))
    add_account(store)
    assert await job.run_due(store, cfg) == []
    assert not (cfg.state_dir / "billing" / "2026-04").exists()
    assert store.db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    clock.now = at(2026, 6, 1, 0, 5)
    assert await job.run_due(store, cfg) == [Month(2026, 5)]
    assert (cfg.state_dir / "billing" / "2026-05" / "acme.txt").exists()


async def test_an_installation_without_a_billing_record_bills_the_month_just_ended(tmp_path: Path) -> None:
    # Accounts from before the billing kept its record: only the month just ended, not the years before.
    cfg, store, clock, _ = setup(tmp_path, at(2025, 1, 10))
    add_account(store)
    clock.now = at(2026, 5, 3)
    assert await job.run_due(store, cfg) == [Month(2026, 4)]


async def test_a_first_month_end_the_daemon_was_down_for_is_billed_at_the_next_start(tmp_path: Path) -> None:
    # Defect: a new installation's daemon, stopped before its first month end and started again a
    # month later, billed only the month just ended: January, with its SMS, was never billed, and
    # the purge took it for billed and deleted its rows (R-5.3: a missed month end is billed at
    # the next start).
    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 10), retention_days=20)
    acme = add_account(store)
    mt(store, acme, at(2026, 1, 15, 12))
    clock.now = at(2026, 1, 20)
    assert await job.run_due(store, cfg) == []
    clock.now = at(2026, 3, 3, 9)
    await purge(store, cfg)  # the start's purge runs before the billing: it must keep January
    assert store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1
    assert await job.run_due(store, cfg) == [Month(2026, 1), Month(2026, 2)]
    assert len(read((cfg.state_dir / "billing" / "2026-01" / "acme.txt").read_bytes()).sms) == 1


def test_cli_run_show_list_and_billing_to(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, store, _, path = setup(tmp_path, at(2026, 2, 1))
    acme = add_account(store)
    mt(store, acme, at(2026, 2, 3))
    c = ["-c", str(path)]
    assert main([*c, "account", "set", "acme", "--billing-to", "a@acme.pl", "--billing-to", "b@acme.pl"]) == 0
    assert store.accounts.billing_addresses(acme) == ["a@acme.pl", "b@acme.pl"]
    assert main([*c, "billing", "--month", "2026-02"]) == 0  # the form gives
    first = (cfg.state_dir / "billing" / "2026-02" / "acme.txt").read_bytes()
    assert main([*c, "billing", "run", "--month", "2026-02"]) == 0
    assert (cfg.state_dir / "billing" / "2026-02" / "acme.txt").read_bytes() == first
    capsys.readouterr()
    assert main([*c, "billing"]) == 2
    assert "smsgw billing --month YYYY-MM" in capsys.readouterr().err
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "acme"]) == 0
    assert (cfg.state_dir / "billing" / "2026-02" / "acme.txt").read_bytes() == first  # same bytes
    assert store.db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0  # no --send: no mail
    capsys.readouterr()
    assert main([*c, "billing", "show", "--month", "2026-02", "--account", "acme"]) == 0
    assert capsys.readouterr().out.encode() == first
    assert main([*c, "billing", "list"]) == 0
    assert "2026-02: 1 account file(s) + summary" in capsys.readouterr().out
    # Copies of three mailings in one second are listed in the order they were mailed (-10 after -2).
    month = cfg.state_dir / "billing" / "2026-02"
    for name in ("mailed-2026-03-01-070410-10", "mailed-2026-03-01-070410-2", "mailed-2026-03-01-070410"):
        (month / name).mkdir()
    assert main([*c, "billing", "list"]) == 0
    listed = [line.split("/")[-2] for line in capsys.readouterr().out.splitlines() if "as mailed" in line]
    assert listed == ["mailed-2026-03-01-070410", "mailed-2026-03-01-070410-2", "mailed-2026-03-01-070410-10"]
    for name in listed:
        (month / name).rmdir()
    # A name the month has no file for: running the month again would not make one (it said only to),
    # unless the account came since. The month is not billed yet (no --send): it said "was billed".
    assert main([*c, "billing", "show", "--month", "2026-02", "--account", "ACME-typo"]) == 1
    err = capsys.readouterr().err
    assert (
        "2026-02 is not billed yet; a run of the whole month wrote its files, and no account named"
        " 'ACME-typo' was in it" in err
    )
    assert "an account added since gets its file at `smsgw billing run --month 2026-02`" in err
    assert main([*c, "billing", "run", "--month", "2026-02", "--send"]) == 0
    rcpts = [r[0] for r in store.db.conn.execute("SELECT rcpt FROM outbox ORDER BY id")]
    assert rcpts == ["a@acme.pl", "b@acme.pl", cfg.mail.admin_address, cfg.mail.admin_address]
    assert main([*c, "account", "set", "acme", "--billing-to", "none"]) == 0
    assert store.accounts.billing_addresses(acme) == []
    assert main([*c, "account", "set", "acme", "--billing-to", "a@acme.pl\nBcc: x@evil.example"]) == 2
    assert main([*c, "account", "set", "acme", "--notify-address", "Ops <ops@acme.pl>"]) == 2
    # On the gateway's own domain: the billing file would come back to the gateway, refused there.
    capsys.readouterr()
    assert main([*c, "account", "set", "acme", "--billing-to", "books@sms.example.com"]) == 2
    assert "would loop: sms.example.com is one of [gateway] domains" in capsys.readouterr().err
    assert main([*c, "account", "set", "acme", "--notify-address", "ops@sms.example.com"]) == 2
    assert (
        store.accounts.billing_addresses(acme) == []
        and store.accounts.get_account("acme").notify_address is None
    )
    assert main([*c, "user", "add", "x@acme.pl\r\nBcc: y@evil.example", "--account", "acme"]) == 2
    # A user on the gateway's own domain would never see the phones' answers: they come back, refused.
    capsys.readouterr()
    assert main([*c, "user", "add", "623000001@sms.example.com", "--account", "acme"]) == 2
    assert "would loop" in capsys.readouterr().err
    assert store.accounts.find_user("623000001@sms.example.com") is None
    assert store.accounts.billing_addresses(acme) == [] and store.accounts.find_user("x@acme.pl") is None
    assert main([*c, "billing", "run", "--month", "2026-13"]) == 2


def test_concurrent_reader_sees_one_snapshot(tmp_path: Path) -> None:
    # The files are rendered on a connection of their own: the store's stays free for the loop.
    cfg, store, _, _ = setup(tmp_path, at(2026, 2, 1))
    acme = add_account(store)
    mt(store, acme, at(2026, 2, 3))
    with store.db.transaction():  # a writer holding the lock does not stop a month being read
        store.db.conn.execute("UPDATE accounts SET bulk = 1")
        files = write_month(cfg.db_path, cfg.state_dir, Month(2026, 2), TZ)
    assert files.accounts[0].sums.sms == 1


def test_a_failed_billing_run_is_tried_again_within_the_hour() -> None:
    # The month-end job fires at 00:05 local time on the 1st and then hourly for as long as a month is
    # owed, so a run that failed does not leave the month unbilled until the next month end.
    from gateway.scheduler import billing_trigger

    tz = ZoneInfo("Europe/Warsaw")
    trigger = billing_trigger("Europe/Warsaw")
    first = trigger.get_next_fire_time(None, datetime(2026, 11, 30, 23, 10, tzinfo=tz))
    assert first == datetime(2026, 12, 1, 0, 5, tzinfo=tz)
    assert trigger.get_next_fire_time(first, first + timedelta(minutes=1)) == datetime(
        2026, 12, 1, 1, 5, tzinfo=tz
    )
    late = trigger.get_next_fire_time(None, datetime(2026, 12, 7, 23, 30, tzinfo=tz))
    assert late == datetime(2026, 12, 8, 0, 5, tzinfo=tz)  # past the first week too (a month owed)


def test_an_opt_out_answer_mailed_to_its_user_is_a_delivered_reply() -> None:
    # the reply rows are the MOs joined to a conversation; one that held an opt-out word
    # was mailed to the user like any answer, so its status is delivered, not failed.
    from billing_reports.monthly import _replies

    phone, ours = "+48601123456", "+48100200300"
    rows = [(1.0, 7, phone, ours, 1, "optout", None, 1, None), (2.0, 8, phone, ours, 1, "new", None, 0, None)]
    lines = _replies(iter(rows), ZoneInfo("Europe/Warsaw"))
    assert [line.status for line in lines] == ["delivered", "pending"]


def test_a_premium_sms_no_service_claimed_pays_no_commission_in_the_summary(tmp_path: Path) -> None:
    # The total's commission (the clients' payouts) was the accounts' plus 3.40 PLN nobody is owed.
    _cfg, store, _, _path = setup(tmp_path, at(2026, 2, 1))
    acme = add_account(store)
    with store.db.transaction():
        for mo_id, (account, password) in enumerate([(acme, "KP100"), (None, "KP999")], start=1):
            store.db.conn.execute(
                "INSERT INTO premium_mo (mo_id, number, phone, service_id, account_id, password, parts,"
                " price, commission, text, state, received_at) VALUES (?, '7955', '+48601100005', NULL,"
                " ?, ?, 1, 900, 340, 'x', 'fallback', ?)",
                (mo_id, account, password, at(2026, 2, 3)),
            )
    files = write_month(store.db.path, tmp_path / "state", Month.parse("2026-02"), TZ)
    assert files.summary is not None
    rows = {r.split("\t")[0]: r.split("\t") for r in files.summary.read_text().splitlines()}
    assert rows["acme"][-3:-1] == ["9.00", "3.40"]
    assert rows["(premium MO without a service)"][-3:-1] == ["9.00", "0.00"]
    assert rows["total"][-3:-1] == ["18.00", "3.40"]  # the operator's revenue, the clients' commission


def test_billing_files_are_for_the_owner_and_group_only_whatever_the_umask(tmp_path: Path) -> None:
    # Every SMS of an account (numbers, staff addresses, premium money): 0644 in 0755 directories
    # under umask 022 outside systemd, where the database beside them is 0600.
    _cfg, store, _, path = setup(tmp_path, at(2026, 2, 1))
    mt(store, add_account(store), at(2026, 2, 3))
    billing = tmp_path / "state" / "billing"
    for umask in (0o022, 0o077):  # also a stricter one: the group (accounting) keeps reading
        old = os.umask(umask)
        try:
            assert main(["-c", str(path), "billing", "run", "--month", "2026-02"]) == 0
        finally:
            os.umask(old)
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [billing, *billing.rglob("*")]}
        assert modes == {"billing": 0o750, "2026-02": 0o750, "acme.txt": 0o640, "_summary.txt": 0o640}
        shutil.rmtree(billing)
