"""A premium MO whose party changes after its month was billed (R-4.6, R-5): the billed month stays
as it was mailed, and the move is booked in the month it happens (`gateway.premium.corrections`).

Real SQLite file, injected clock, the month billed by the scheduled job's `bill_month` (files
written, mails queued, the month recorded billed), the files read back by the tests' reader.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports import job
from billing_reports.monthly import Month
from billing_reports.writer import SUMMARY, month_dir, write_month
from gateway.premium import handlers
from gateway.reassembly import TIMEOUT_SECONDS
from tests.billing_reader import BillingFile, grosze, read
from tests.test_late_segments import housekeeping, vote
from tests.test_premium import World

TZ = ZoneInfo("Europe/Warsaw")
JAN, FEB = Month(2027, 1), Month(2027, 2)


def at(*a: int) -> float:
    return datetime(*a, tzinfo=TZ).timestamp()  # type: ignore[misc]


def acme_file(w: World, month: Month) -> BillingFile:
    files = write_month(w.store.path, w.config.state_dir, month, TZ, billing_dir=w.config.billing_dir)
    return read(next(f for f in files.accounts if f.account == "acme").path.read_bytes())


def summary(w: World, month: Month) -> dict[str, list[str]]:
    text = (month_dir(w.config.state_dir, month, w.config.billing_dir) / SUMMARY).read_text()
    return {row[0]: row[1:] for row in (line.split("\t") for line in text.splitlines())}


def money(rows: dict[str, list[str]], name: str) -> tuple[int, int, int]:
    """(sms, price, commission) of a summary line."""
    row = rows[name]
    return int(row[0]), grosze(row[-3]), grosze(row[-2])


def total_is_the_sum(rows: dict[str, list[str]]) -> None:
    lines = [k for k in rows if not k.startswith(("#", "account", "end", "total"))]
    for i in range(len(rows["total"]) - 1):  # every column but the checksum
        column = [rows[k][i] for k in lines]
        if "." in rows["total"][i]:
            assert sum(map(grosze, column)) == grosze(rows["total"][i])
        else:
            assert sum(map(int, column)) == int(rows["total"][i])


async def bill(w: World, month: Month) -> bytes:
    """The 00:05 run on the 1st: written, mailed, recorded billed. Returns acme's file as mailed."""
    files = await job.bill_month(w.store, w.config, month)
    return next(f for f in files.accounts if f.account == "acme").path.read_bytes()


async def joined_without_password(w: World) -> None:
    """Parts 2 and 3 of a 3-part vote to 7355 at 23:40 on 31 January, joined by the timeout without
    the password (to the fallback, 6.00 PLN charged to no service)."""
    w.now = at(2027, 1, 31, 23, 40)
    w.service()
    hk = housekeeping(w)
    for seq in (2, 3):
        await vote(w, seq)
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    w.hk = hk  # type: ignore[attr-defined]


async def late_first_part(w: World) -> None:
    w.now = at(2027, 2, 1, 0, 30)
    await vote(w, 1)
    w.now += TIMEOUT_SECONDS + 1
    await w.hk.expire()  # type: ignore[attr-defined]


async def test_a_password_that_comes_after_its_month_was_billed_is_booked_in_the_next_month(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    await joined_without_password(w)
    w.now = at(2027, 2, 1, 0, 5)
    mailed = await bill(w, JAN)
    jan_rows = summary(w, JAN)
    assert money(jan_rows, "acme") == (0, 0, 0)
    assert money(jan_rows, "(premium MO without a service)") == (1, 600, 0)

    await late_first_part(w)

    # January is what was mailed: rendered again, the same bytes.
    assert acme_file(w, JAN) == read(mailed)
    write_month(w.store.path, w.config.state_dir, JAN, TZ, billing_dir=w.config.billing_dir)
    assert summary(w, JAN) == jan_rows
    # February books the move: the SMS of 31 January is acme's, its 6.00 / 2.20 with it.
    feb = acme_file(w, FEB)
    moved = [line for line in feb.sms if "correction" in line["reason"]]
    assert [(m["parts"], m["status"], m["price_pln"], m["commission_pln"]) for m in moved] == [
        ("2", "delivered", "6.00", "2.20")
    ]
    # Named by when its phone sent it (its first part that came, 23:40), as its January line names it.
    assert "2027-01-31 23:40:00" in moved[0]["reason"] and "billed in 2027-01" in moved[0]["reason"]
    assert feb.totals[("all", "-")]["sms"] == "1"  # the vote, now acme's; its late part no second SMS
    assert grosze(feb.totals[("all", "-")]["commission_pln"]) == 220 + 110
    feb_rows = summary(w, FEB)
    assert money(feb_rows, "acme") == (1, 900, 330)
    assert money(feb_rows, "(premium MO without a service)") == (-1, -600, 0)
    total_is_the_sum(feb_rows)


async def test_a_password_that_comes_before_its_month_is_billed_changes_the_row(tmp_path: Path) -> None:
    w = World(tmp_path)
    await joined_without_password(w)
    await late_first_part(w)
    w.now = at(2027, 2, 1, 0, 35)
    await bill(w, JAN)
    rows = summary(w, JAN)
    assert money(rows, "acme") == (1, 600, 220)
    assert "(premium MO without a service)" not in rows
    assert w.store.db.conn.execute("SELECT COUNT(*) FROM premium_corrections").fetchone()[0] == 0


async def unconfirmed_votes(w: World) -> int:
    w.now = at(2027, 1, 30, 12)
    sid = w.service(verified=False)
    await w.mo("KP123 vote A")
    await w.mo("kp123 vote B")
    return sid


def remove(w: World, sid: int) -> None:
    with w.store.db.transaction():
        service = w.r.service(sid)
        w.r.update_service(sid, removed_at=w.now)
        handlers.release_awaiting(w.store, w.config, service, "removed before its address confirmed")  # type: ignore[arg-type]


async def test_votes_released_after_their_month_was_billed_are_taken_back_in_the_month_of_the_release(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    sid = await unconfirmed_votes(w)
    w.now = at(2027, 2, 1, 0, 5)
    await bill(w, JAN)
    assert money(summary(w, JAN), "acme") == (2, 600, 220)

    w.now = at(2027, 2, 3, 12)
    remove(w, sid)

    jan = acme_file(w, JAN)  # as billed: money and status (tests/test_premium_billed_status.py)
    assert grosze(jan.totals[("all", "-")]["commission_pln"]) == 220
    feb = acme_file(w, FEB)
    back = [(m["status"], m["price_pln"], m["commission_pln"]) for m in feb.sms]
    assert back == [("pending", "-3.00", "-1.10")] * 2
    assert all("moved from account acme to no service" in m["reason"] for m in feb.sms)
    feb_rows = summary(w, FEB)
    assert money(feb_rows, "acme") == (-2, -600, -220)
    assert money(feb_rows, "(premium MO without a service)") == (2, 600, 0)
    total_is_the_sum(feb_rows)
    assert [r[0] for r in w.premium_mo()] == ["fallback", "fallback"]  # and mailed to the fallback


async def test_votes_released_before_their_month_is_billed_are_no_clients_in_it(tmp_path: Path) -> None:
    w = World(tmp_path)
    sid = await unconfirmed_votes(w)
    w.now = at(2027, 1, 31, 12)
    remove(w, sid)
    w.now = at(2027, 2, 1, 0, 5)
    await bill(w, JAN)
    rows = summary(w, JAN)
    assert money(rows, "acme") == (0, 0, 0)
    assert money(rows, "(premium MO without a service)") == (2, 600, 0)
