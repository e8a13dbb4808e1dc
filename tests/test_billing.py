"""Monthly billing (issue 12) over a real store with an injected clock: month bounds in local time,
a DST month, the purge note, catch-up after a missed month end, idempotence, the CLI."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from billing_reports import job, writer
from billing_reports.monthly import Month
from billing_reports.repo import LAST_BILLED, BillingRepo
from billing_reports.writer import ArchiveKept, file_name, write_month
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


async def test_purged_detail_is_said_not_hidden(tmp_path: Path) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 5))
    acme = add_account(store)
    mt(store, acme, at(2026, 1, 10), parts=3)
    store.accounts.add_usage([f"account:{acme}"], ["2026-01"], 3)
    write_month(cfg.db_path, cfg.state_dir, Month(2026, 1), TZ)
    kept = read((cfg.state_dir / "billing" / "2026-01" / "acme.txt").read_bytes())
    assert kept.notes == [] and len(kept.sms) == 1
    BillingRepo(store.db, store.clock).put(LAST_BILLED, "2026-05")  # billed: the purge may take it
    clock.now = at(2026, 6, 1)  # 90 days of retention later
    await purge(store, cfg)
    path = cfg.state_dir / "billing" / "2026-01" / "acme.txt"
    # the file written while the rows existed is the record: a re-run does not shorten it.
    with pytest.raises(ArchiveKept, match="retention purge"):
        write_month(cfg.db_path, cfg.state_dir, Month(2026, 1), TZ)
    assert len(read(path.read_bytes()).sms) == 1
    path.rename(tmp_path / "archived-acme.txt")  # moved away by the admin: the shorter one is written
    write_month(cfg.db_path, cfg.state_dir, Month(2026, 1), TZ)
    purged = read(path.read_bytes())
    assert purged.sms == [] and "deleted by the retention purge" in purged.notes[0]
    assert purged.header["accepted parts (usage counter)"] == ["3"]
    # A run of the month after the purge stopped partway (Ctrl-C): its files were taken for archives
    # and the month, marked incomplete, could never be written whole ("kept as they are").
    from billing_reports.files import is_incomplete, mark_incomplete

    mark_incomplete(path.parent, "2026-01")
    (path.parent / "_summary.txt").unlink()
    write_month(cfg.db_path, cfg.state_dir, Month(2026, 1), TZ)
    assert not is_incomplete(path.parent) and (path.parent / "_summary.txt").exists()
    assert read(path.read_bytes()) == purged


async def test_the_purge_keeps_a_month_until_it_is_billed(tmp_path: Path) -> None:
    # Defect: the purge deleted detail rows of a month not billed yet (a retention of 20 days did so
    # every month), so that month's billing file could never list every SMS. Here: 40 days,
    # and the daemon was down over the month end; at its start the purge must not outrun the billing.
    cfg, store, clock, _ = setup(tmp_path, at(2026, 2, 20), retention_days=40)
    acme = add_account(store)
    BillingRepo(store.db, store.clock).put(LAST_BILLED, "2026-02")
    for day in (2, 10, 20):
        mt(store, acme, at(2026, 3, day, 12))
    detail = lambda: store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]  # noqa: E731
    clock.now = at(2026, 4, 12, 3, 30)  # the 2nd of March is past the retention, March is unbilled
    with capture_logs() as logs:
        await purge(store, cfg)
    assert detail() == 3
    held = [e for e in logs if e["event"] == "retention.held_for_billing"]
    assert [(e["month"], e["kept_from"]) for e in held] == [("2026-03", "2026-03-01T00:00:00+01:00")]
    assert await job.run_due(store, cfg) == [Month(2026, 3)]
    march = read((cfg.state_dir / "billing" / "2026-03" / "acme.txt").read_bytes())
    assert march.notes == [] and times(cfg, "2026-03") == [
        "2026-03-02 12:00:00",
        "2026-03-10 12:00:00",
        "2026-03-20 12:00:00",
    ]
    await purge(store, cfg)  # billed: the retention alone decides again
    assert detail() == 2


async def test_a_month_whose_billing_keeps_failing_is_not_purged(tmp_path: Path) -> None:
    # The same hold with the default retention: billing stopped after January (a full disk, say),
    # and 90 days later the purge would reach February; it waits for February to be billed.
    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 31))
    acme = add_account(store)
    BillingRepo(store.db, store.clock).put(LAST_BILLED, "2026-01")
    mt(store, acme, at(2026, 1, 20))
    mt(store, acme, at(2026, 2, 3))
    clock.now = at(2026, 5, 20)
    await purge(store, cfg)
    dates = [r[0] for r in store.db.conn.execute("SELECT created_at FROM messages")]
    assert dates == [at(2026, 2, 3)]  # January was billed and goes; February waits
    assert float(BillingRepo(store.db, store.clock).get("purged_before") or 0) == at(2026, 2, 1)


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
    # The month-end job fires at 00:05 local time on the 1st and then hourly through the first week,
    # so a run that failed does not leave the month unbilled until the next month end.
    from gateway.scheduler import billing_trigger

    tz = ZoneInfo("Europe/Warsaw")
    trigger = billing_trigger("Europe/Warsaw")
    first = trigger.get_next_fire_time(None, datetime(2026, 11, 30, 23, 0, tzinfo=tz))
    assert first == datetime(2026, 12, 1, 0, 5, tzinfo=tz)
    assert trigger.get_next_fire_time(first, first + timedelta(minutes=1)) == datetime(
        2026, 12, 1, 1, 5, tzinfo=tz
    )
    late = trigger.get_next_fire_time(None, datetime(2026, 12, 7, 23, 30, tzinfo=tz))
    assert late == datetime(2027, 1, 1, 0, 5, tzinfo=tz)  # quiet for the rest of the month


def test_an_opt_out_answer_mailed_to_its_user_is_a_delivered_reply() -> None:
    # the reply rows are the MOs joined to a conversation; one that held an opt-out word
    # was mailed to the user like any answer, so its status is delivered, not failed.
    from billing_reports.monthly import _replies

    phone, ours = "+48601123456", "+48100200300"
    rows = [(1.0, 7, phone, ours, 1, "optout", None, None), (2.0, 8, phone, ours, 1, "new", None, None)]
    lines = _replies(iter(rows), ZoneInfo("Europe/Warsaw"))
    assert [line.status for line in lines] == ["delivered", "pending"]


# ---- account file names, a file that cannot be written, month arguments, answers of a moved user ----

LONG = "Spółka Akcyjna " + "ż" * 40  # 55 characters, a file name of 273 bytes once escaped (255 at most)


def test_a_long_account_name_gets_a_file_and_short_names_keep_theirs(tmp_path: Path) -> None:
    # The escaped name had no cap: "File name too long" stopped the billing of every account.
    cfg, store, _, _ = setup(tmp_path, at(2026, 10, 1))
    add_account(store)
    mt(store, add_account(store, LONG), at(2026, 11, 3))
    files = write_month(cfg.db_path, cfg.state_dir, Month(2026, 11), TZ)
    long = file_name(LONG)
    assert [(f.account, f.path.name, f.sums.sms) for f in files.accounts] == [
        (LONG, long, 1),
        ("acme", "acme.txt", 0),
    ]
    assert files.summary is not None and files.summary.exists()
    assert read(files.accounts[0].path.read_bytes()).header["account"] == [LONG]
    assert long.startswith("Sp%C3%B3%C5%82ka%20Akcyjna%20%C5%BC") and long.endswith(".txt")
    assert len(long.encode()) <= writer.MAX_FILE_NAME and "~" in long
    assert file_name(LONG + "a") != long and file_name(LONG) == long  # told apart, and the same every run
    assert len(file_name("😀" * 64).encode()) <= writer.MAX_FILE_NAME
    # The names of the files already written stay as they were.
    assert file_name("acme") == "acme.txt"
    assert file_name("_x") == "%5Fx.txt" and file_name(".x") == "%2Ex.txt"
    assert file_name("Łódź sp. z o.o.") == "%C5%81%C3%B3d%C5%BA%20sp.%20z%20o.o..txt"
    assert file_name("a" * 196) == "a" * 196 + ".txt"
    # Up to the longest name a file could be written under before (a 39-letter Cyrillic company
    # name escapes to 229 bytes): its earlier months are still found under the same name.
    cyrillic = "Товариство з обмеженою відповідальністю"
    assert "~" not in file_name(cyrillic) and len(file_name(cyrillic)) == 229
    assert file_name("a" * 238) == "a" * 238 + ".txt" and "~" in file_name("a" * 239)


async def test_an_account_whose_file_cannot_be_written_does_not_stop_the_others(tmp_path: Path) -> None:
    # The month is not recorded as billed (it is tried again), but the other accounts get their
    # files and mails at once, and the next run mails only what is missing: no mail twice.
    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 10))
    for name in ("acme", "beta", "zeta"):
        mt(store, add_account(store, name), at(2026, 2, 3))
        store.accounts.set_billing_addresses(name, [f"billing@{name}.pl"])
    BillingRepo(store.db, store.clock).put(LAST_BILLED, "2026-01")
    blocked = cfg.state_dir / "billing" / "2026-02" / "beta.txt"
    blocked.mkdir(parents=True)  # where beta's file goes: it cannot be renamed over a directory
    clock.now = at(2026, 3, 1, 0, 5)
    rcpts = lambda: [r[0] for r in store.db.conn.execute("SELECT rcpt FROM outbox ORDER BY id")]  # noqa: E731
    with capture_logs() as logs:
        assert await job.run_due(store, cfg) == []
    failed = [e for e in logs if e["event"] == "billing.account_failed"]
    assert [(e["account"], e["month"]) for e in failed] == [("beta", "2026-02")]
    assert BillingRepo(store.db, store.clock).get(LAST_BILLED) == "2026-01"
    assert rcpts() == ["billing@acme.pl", cfg.mail.admin_address, "billing@zeta.pl", cfg.mail.admin_address]
    assert not (blocked.parent / "_summary.txt").exists()  # it would lack beta: written once all are
    assert (blocked.parent / "zeta.txt").exists()
    blocked.rmdir()
    assert await job.run_due(store, cfg) == [Month(2026, 2)]
    assert rcpts()[4:] == ["billing@beta.pl", cfg.mail.admin_address, cfg.mail.admin_address]
    summary = (blocked.parent / "_summary.txt").read_text()
    assert all(f"{name}\t1\t" in summary for name in ("acme", "beta", "zeta"))


def test_billing_run_by_hand_names_the_account_it_could_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, store, _, path = setup(tmp_path, at(2026, 1, 10))
    for name in ("acme", "beta"):
        mt(store, add_account(store, name), at(2026, 2, 3))
    (cfg.state_dir / "billing" / "2026-02" / "acme.txt").mkdir(parents=True)
    capsys.readouterr()
    assert main(["-c", str(path), "billing", "run", "--month", "2026-02"]) == 1
    err = capsys.readouterr().err
    assert "1 account file(s) not written (acme: acme.txt: Is a directory)" in err
    assert (cfg.state_dir / "billing" / "2026-02" / "beta.txt").exists()
    with pytest.raises(writer.MonthIncomplete) as caught:
        write_month(cfg.db_path, cfg.state_dir, Month(2026, 2), TZ)
    assert [f.account for f in caught.value.files.failed] == ["acme"]
    assert [f.account for f in caught.value.files.accounts] == ["beta"]


@pytest.mark.parametrize(
    "text", ["２０２６-11", "2026-1１", "0000-01", "0001-01", "1999-12", "9999-12", "2026-13"]
)
def test_a_month_is_ascii_digits_within_a_sane_range(text: str) -> None:
    # Full-width digits were read as 2026-11; year 0 and 9999-12 stopped with "year 0 is out of
    # range" (the option not named), and 0001-01 wrote a billing/0001-01 directory.
    with pytest.raises(ValueError, match="give YYYY-MM between 2000-01 and 9998-12"):
        Month.parse(text)
    with pytest.raises(ValueError) as caught:
        Month.parse(text, option="--month")
    assert str(caught.value) == f"--month {text}: give YYYY-MM between 2000-01 and 9998-12, such as 2026-03"
    assert Month.parse("2000-01") == Month(2000, 1) and Month.parse(" 9998-12 ") == Month(9998, 12)
    assert Month(9998, 12).bounds(TZ)[1] > Month(9998, 12).bounds(TZ)[0]


def test_billing_run_refuses_a_month_out_of_range_without_writing(tmp_path: Path) -> None:
    cfg, store, _, path = setup(tmp_path, at(2026, 1, 10))
    add_account(store)
    for month in ("0001-01", "9999-12", "0000-01"):
        assert main(["-c", str(path), "billing", "run", "--month", month]) == 2
    assert not (cfg.state_dir / "billing").exists()


async def test_an_answer_stays_with_the_account_whose_sms_it_answered(tmp_path: Path) -> None:
    # The reply lines were billed through the conversation's account as it stood at billing time,
    # and the conversation moves with the user's next SMS: a user moved from acme to beta took
    # acme's past answers into beta's file.
    from gateway.conversations import handlers
    from gateway.conversations.repo import ConversationsRepo

    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 10))
    acme, beta = add_account(store, "acme"), add_account(store, "beta")
    conversations = ConversationsRepo(store.db, store.clock)
    phone, ours = "+48601123456", "+48100200300"

    def sms_from_anna(account_id: int, ts: float) -> None:
        clock.now = ts
        conversations.record_mt(
            phone=phone, number=ours, user_email="anna@acme.example", account_id=account_id,
            domain="sms.example.com", header_message_id=None, subject="Meeting", text="At 10?",
        )  # fmt: skip

    def answer(ts: float, text: str) -> str:
        clock.now = ts
        mo_id = store.mo.record_mo("main", phone, ours, text, 0, None)
        assert mo_id is not None
        return handlers.on_whole_mo(store, cfg, mo_id, earlier=store.mo.redelivery_of(mo_id))

    store.accounts.add_user("anna@acme.example", "acme")
    sms_from_anna(acme, at(2026, 2, 3, 9))
    assert answer(at(2026, 2, 3, 10), "Yes") == "mailed"
    store.accounts.remove_user("anna@acme.example")  # she moves to beta and writes from there
    store.accounts.add_user("anna@acme.example", "beta")
    sms_from_anna(beta, at(2026, 2, 10, 9))
    assert answer(at(2026, 2, 10, 10), "No") == "mailed"
    files = write_month(cfg.db_path, cfg.state_dir, Month(2026, 2), TZ)
    replies = {
        f.account: [r["time"] for r in read(f.path.read_bytes()).sms if r["kind"] == "MO-reply"]
        for f in files.accounts
    }
    assert replies == {"acme": ["10:00:00"], "beta": ["10:00:00"]}
    dates = {f.account: [r["date"] for r in read(f.path.read_bytes()).sms] for f in files.accounts}
    assert dates == {"acme": ["2026-02-03"], "beta": ["2026-02-10"]}


async def test_one_user_is_one_user_total_however_they_typed_their_address(tmp_path: Path) -> None:
    # totals per user: the envelope address as typed (anna@ and Anna@) made two users.
    import time

    from tests.conftest import STAFF, free_port, mail, make_config, running_gateway

    cfg = make_config(tmp_path, smsc_port=free_port())
    async with running_gateway(cfg) as gw:
        for sender in (STAFF, STAFF.capitalize()):
            to = "+48601123456@sms.example.com"
            assert (await gw.send(mail([to], body=f"hi from {sender}"), sender=sender)).error is None
        await gw.until(lambda: len(gw.states()) == 2)
    tz = ZoneInfo(cfg.gateway.timezone)

    def user_totals() -> list[list[str]]:
        (account,) = write_month(cfg.db_path, cfg.state_dir, Month.containing(time.time(), tz), tz).accounts
        lines = account.path.read_text().splitlines()
        return [line.split("\t")[2:4] for line in lines if line.startswith("total\tuser\t")]

    assert user_totals() == [[STAFF, "2"]]
    # The user leaves the company: the ACL no longer names them, their SMS are still one person's.
    store = Store.open(cfg.db_path)
    store.accounts.remove_user(STAFF)
    store.close()
    assert user_totals() == [[STAFF.lower(), "2"]]


def test_one_account_run_again_rewrites_the_summary_with_it(tmp_path: Path) -> None:
    # The month was billed; an SMS of acme's was settled late and acme's file is written again by
    # hand. The summary kept acme's old totals and checksum: the operator's page and the file disagreed.
    cfg, store, _, path = setup(tmp_path, at(2026, 2, 1))
    acme, beta = add_account(store), add_account(store, "beta")
    mt(store, acme, at(2026, 2, 3))
    mt(store, beta, at(2026, 2, 4))
    c = ["-c", str(path)]
    directory = cfg.state_dir / "billing" / "2026-02"
    assert main([*c, "billing", "run", "--month", "2026-02"]) == 0
    beta_file = (directory / "beta.txt").stat()
    mt(store, acme, at(2026, 2, 5))
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "acme"]) == 0
    acme_file = read((directory / "acme.txt").read_bytes())
    assert len(acme_file.sms) == 2
    summary = {r.split("\t")[0]: r.split("\t") for r in (directory / "_summary.txt").read_text().splitlines()}
    acme_sha = (directory / "acme.txt").read_bytes().rstrip(b"\n").rpartition(b"sha256:")[2].decode()
    assert (summary["acme"][1], summary["acme"][-1]) == ("2", acme_sha)
    assert summary["total"][1] == "3"
    assert (directory / "beta.txt").stat().st_mtime_ns == beta_file.st_mtime_ns  # its rows did not change
    # Another account's rows changed too: its file is written with the summary, which names it.
    mt(store, beta, at(2026, 2, 6))
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "acme"]) == 0
    assert len(read((directory / "beta.txt").read_bytes()).sms) == 2
    assert (directory / "_summary.txt").read_text().splitlines()[-2].split("\t")[1] == "4"
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "nobody"]) == 1
    assert store.db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0


def test_a_mailed_month_written_again_with_other_rows_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A late report or a renamed user changes a month already mailed: the file on disk was rewritten
    # in silence, and no longer matched the one the account (and the operator) had been sent.
    _cfg, store, _, path = setup(tmp_path, at(2026, 2, 1))
    acme = add_account(store)
    mt(store, acme, at(2026, 2, 3))
    c = ["-c", str(path)]
    assert main([*c, "billing", "run", "--month", "2026-02", "--send"]) == 0
    capsys.readouterr()
    assert main([*c, "billing", "run", "--month", "2026-02"]) == 0  # same rows: nothing to say
    assert "not the file mailed" not in capsys.readouterr().err
    mt(store, acme, at(2026, 2, 5))
    assert main([*c, "billing", "run", "--month", "2026-02"]) == 0
    err = capsys.readouterr().err
    assert "acme.txt: not the file mailed on " in err and "--send --again" in err
    assert main([*c, "billing", "run", "--month", "2026-02", "--send", "--again"]) == 0
    assert "not the file mailed" not in capsys.readouterr().err


def test_one_account_sent_again_mails_only_that_accounts_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--account acme --send --again` also mailed beta's file, rewritten beside acme's for the
    # summary after a late report changed it; without --again it refused over beta's earlier mail.
    _cfg, store, _, path = setup(tmp_path, at(2026, 2, 1))
    acme, beta = add_account(store), add_account(store, "beta")
    store.accounts.set_billing_addresses("beta", ["billing@beta.pl"])
    mt(store, acme, at(2026, 2, 3))
    mt(store, beta, at(2026, 2, 4))
    c = ["-c", str(path)]
    assert main([*c, "billing", "run", "--month", "2026-02", "--send"]) == 0
    sent = store.db.conn.execute("SELECT MAX(id) FROM outbox").fetchone()[0]
    mt(store, beta, at(2026, 2, 6))  # beta's rows change (acme's file is rewritten the same)
    mt(store, acme, at(2026, 2, 7))
    capsys.readouterr()
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "acme", "--send", "--again"]) == 0
    assert "beta.txt" in capsys.readouterr().out  # written for the summary
    rows = store.db.conn.execute("SELECT rcpt, content FROM outbox WHERE id > ?", (sent,)).fetchall()
    assert rows and all(b"Subject: SMS billing 2026-02: acme" in content for _, content in rows)
    assert "billing@beta.pl" not in [rcpt for rcpt, _ in rows]
    mt(store, acme, at(2026, 2, 8))
    mt(store, beta, at(2026, 2, 9))
    assert main([*c, "billing", "run", "--month", "2026-02", "--account", "acme", "--send"]) == 1
    err = capsys.readouterr().err
    assert "/acme.txt: 2026-02 was already mailed" in err
    assert "beta.txt: 2026-02 was already mailed" not in err


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
