"""A premium MO of a billed month whose service is removed later stays in that month as billed.

Two votes kept for an unconfirmed service are billed (and mailed) in January as `pending`; the
service is removed in February, before its address confirmed. February's files book the move (a
reversal of `pending` for acme, the votes under no service as `delivered`: mailed to the fallback
address). January written again read them as `failed` (reason: removed): not the file the client was
mailed, and with February's reversal of `pending` the status counts of the two months no longer added
up.

Also what the billing file and mail say of the money: net amounts, excluding VAT.

Real SQLite file, injected clock, the month billed by the scheduled job's `bill_month` (files
written, mails queued in the outbox, the month recorded billed), the files read back by the tests'
reader (`tests.test_premium_corrections`' world).
"""

from __future__ import annotations

from pathlib import Path

from billing_reports.monthly import STATUSES
from billing_reports.writer import SUMMARY, month_dir, write_month
from gateway.billingwords import BILLING_MONEY
from gateway.polish import zloty
from tests.billing_reader import read
from tests.test_premium import World
from tests.test_premium_corrections import FEB, JAN, TZ, acme_file, at, bill, remove, unconfirmed_votes

UNCLAIMED = "(premium MO without a service)"


def summary_text(w: World, month: object) -> str:
    return (month_dir(w.config.state_dir, month, w.config.billing_dir) / SUMMARY).read_text()  # type: ignore[arg-type]


def by_status(text: str) -> dict[str, int]:
    """The summary's SMS per status, over its account lines and the line of no service's."""
    rows = [
        line.split("\t")
        for line in text.splitlines()
        if not line.startswith(("#", "account", "total", "end"))
    ]
    return {k: sum(int(row[3 + i]) for row in rows) for i, k in enumerate(STATUSES)}


async def test_a_billed_vote_stays_as_billed_when_its_service_is_removed_later(tmp_path: Path) -> None:
    w = World(tmp_path)
    sid = await unconfirmed_votes(w)
    w.now = at(2027, 2, 1, 0, 5)
    mailed = await bill(w, JAN)
    jan_summary = summary_text(w, JAN)
    assert [(m["status"], m["reason"]) for m in read(mailed).sms] == [("pending", "")] * 2

    w.now = at(2027, 2, 3, 12)
    remove(w, sid)
    assert [r[0] for r in w.premium_mo()] == ["fallback", "fallback"]  # what became of them

    # January written again: the bytes mailed, in the account's file and in the summary.
    files = write_month(w.store.path, w.config.state_dir, JAN, TZ, billing_dir=w.config.billing_dir)
    again = next(f for f in files.accounts if f.account == "acme").path.read_bytes()
    assert [(m["status"], m["reason"]) for m in read(again).sms] == [("pending", "")] * 2
    assert again == mailed
    assert summary_text(w, JAN) == jan_summary

    # February: the new state on the correction's lines only.
    feb = acme_file(w, FEB)
    assert [m["status"] for m in feb.sms] == ["pending", "pending"]  # taken back as billed
    feb_summary = summary_text(w, FEB)
    unclaimed = next(line for line in feb_summary.splitlines() if line.startswith(UNCLAIMED)).split("\t")
    assert unclaimed[1] == "2" and unclaimed[3 + STATUSES.index("delivered")] == "2"  # to the fallback

    # The two months' status counts add up to what became of the two votes.
    jan, feb_counts = by_status(jan_summary), by_status(feb_summary)
    summed = {k: jan[k] + feb_counts[k] for k in STATUSES}
    assert summed == {"delivered": 2, "failed": 0, "expired": 0, "pending": 0}


async def test_the_file_and_the_mail_say_the_amounts_are_net(tmp_path: Path) -> None:
    w = World(tmp_path)
    await unconfirmed_votes(w)
    w.now = at(2027, 2, 1, 0, 5)
    mailed = read(await bill(w, JAN))
    assert mailed.header["money"] == ["PLN net (excluding VAT), two decimals, summed from integer grosze"]
    bodies = [
        msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        for _kind, _from, rcpt, msg in w.outbox()
        if str(msg["Subject"]).startswith("SMS billing 2027-01: acme")
    ]
    assert bodies and all(
        "Premium SMS: price 6.00 PLN, commission 2.20 PLN (net amounts, excluding VAT)." in b for b in bodies
    )
    assert BILLING_MONEY("pl", price=zloty(600), commission=zloty(220)) == (
        "SMS premium: cena 6,00 zł, prowizja 2,20 zł (kwoty netto, bez VAT).\n"
    )
