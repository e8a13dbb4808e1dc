"""A billed month's premium lines do not change when the month is written again.

A premium SMS whose billing status changes after its month was billed, its party keeping it, is
booked as a correction in the month of the change (`gateway.premium.corrections.restate`), as a
move to another party is: the billed month lists it as billed and mailed, the next month takes the
old status back and books the new one for the same account (money netting to nothing), and the
status counts of the two months add up to what became of it. Before, the billed month written again
listed it under its new status (not the file mailed) and no month counted the change:

- two votes kept for an unconfirmed address, billed `pending` in January, mailed once the address
  confirms in February (`handlers.forward_awaiting`): January written again read `delivered`;
- a vote mailed to its client on 31 January, billed `delivered`, whose mail the relay refuses for
  good in February (`votemail._vote_refused`): January written again read `failed`, the refusal
  as its reason;
- a vote billed `failed` (its client's address refused before the month ended: the refusal its
  reason, the row's note) whose copy to the fallback address is refused after the month was
  billed: its reason in January grew that refusal. Its billing status stays, so nothing is booked.

Real SQLite file, injected clock, the month billed by the scheduled job's `bill_month` (files
written, mails queued in the outbox, the month recorded billed), the refusal recorded by the outbox
worker's own `finish_mail`, the files read back by the tests' reader.
"""

from __future__ import annotations

from pathlib import Path

from billing_reports.monthly import STATUSES
from billing_reports.writer import SUMMARY, month_dir, write_month
from gateway.premium import answers, passwords
from gateway.smtp.intake import read_mail
from tests.billing_reader import grosze, read
from tests.test_premium import CLIENT, FALLBACK, World
from tests.test_premium_billed_status import by_status
from tests.test_premium_corrections import FEB, JAN, TZ, acme_file, at, bill, unconfirmed_votes

REFUSED = "550 5.1.1 <konkurs@acme.pl>: Recipient address rejected: User unknown"


def summary_text(w: World, month: object) -> str:
    return (month_dir(w.config.state_dir, month, w.config.billing_dir) / SUMMARY).read_text()  # type: ignore[arg-type]


def written_again(w: World) -> tuple[bytes, str]:
    """January written again: acme's file and the summary."""
    files = write_month(w.store.path, w.config.state_dir, JAN, TZ, billing_dir=w.config.billing_dir)
    return next(f for f in files.accounts if f.account == "acme").path.read_bytes(), summary_text(w, JAN)


def confirm(w: World) -> None:
    """The client answers the confirmation mail the service's addition sent."""
    ((_k, _f, _r, ask),) = w.outbox("premium-verify")
    target = passwords.target(ask["Reply-To"].addresses[0].username)
    assert target is not None
    reply = read_mail(b"From: konkurs@acme.pl\r\nSubject: Re: confirm\r\n\r\nyes\r\n")
    answers.confirm(w.store, w.config, target.token, reply)  # type: ignore[arg-type]


def refuse(w: World, rcpt: str) -> None:
    """The relay refuses, for good, the mail queued to `rcpt`: the outbox worker records it so."""
    (mail_id,) = w.store.db.conn.execute("SELECT id FROM outbox WHERE rcpt = ?", (rcpt,)).fetchone()
    w.store.outbox.finish_mail(mail_id, "failed", REFUSED)


def added_up(jan: str, feb: str) -> dict[str, int]:
    a, b = by_status(jan), by_status(feb)
    return {k: a[k] + b[k] for k in STATUSES}


async def test_kept_votes_confirmed_after_their_month_was_billed_are_booked_in_the_next(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    await unconfirmed_votes(w)
    w.now = at(2027, 2, 1, 0, 5)
    mailed = await bill(w, JAN)
    jan_summary = summary_text(w, JAN)
    assert [m["status"] for m in read(mailed).sms] == ["pending"] * 2

    w.now = at(2027, 2, 2, 9)
    confirm(w)
    assert [r[0] for r in w.premium_mo()] == ["mailed", "mailed"]  # what became of them
    assert len(w.outbox("premium")) == 2

    again, summary = written_again(w)
    assert again == mailed
    assert summary == jan_summary

    feb = acme_file(w, FEB)
    booked = [(m["parts"], m["status"], m["price_pln"], m["commission_pln"]) for m in feb.sms]
    assert booked == [("-1", "pending", "-3.00", "-1.10"), ("1", "delivered", "3.00", "1.10")] * 2
    assert all(
        "billed in 2027-01" in m["reason"] and "mailed once konkurs@acme.pl confirmed" in m["reason"]
        for m in feb.sms
    )
    assert grosze(feb.totals[("all", "-")]["price_pln"]) == 0  # billed in January, once
    assert added_up(jan_summary, summary_text(w, FEB)) == {
        "delivered": 2,
        "failed": 0,
        "expired": 0,
        "pending": 0,
    }


async def test_a_billed_vote_whose_mail_is_refused_later_stays_as_billed(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.now = at(2027, 1, 31, 23, 50)
    w.service()
    await w.mo("KP123 vote A")
    w.now = at(2027, 2, 1, 0, 5)
    mailed = await bill(w, JAN)
    jan_summary = summary_text(w, JAN)
    assert [m["status"] for m in read(mailed).sms] == ["delivered"]

    w.now = at(2027, 2, 1, 8)
    refuse(w, CLIENT)
    assert [r[0] for r in w.premium_mo()] == ["fallback"]  # what became of it

    again, summary = written_again(w)
    assert again == mailed
    assert summary == jan_summary

    feb = acme_file(w, FEB)
    assert [(m["parts"], m["status"], m["price_pln"]) for m in feb.sms] == [
        ("-1", "delivered", "-3.00"),
        ("1", "failed", "3.00"),
    ]
    assert "billed in 2027-01" in feb.sms[1]["reason"]
    assert "relay refused the mail to konkurs@acme.pl" in feb.sms[1]["reason"]
    assert added_up(jan_summary, summary_text(w, FEB)) == {
        "delivered": 0,
        "failed": 1,
        "expired": 0,
        "pending": 0,
    }
    # The fallback's copy says why it came, as before.
    ((_k, _f, rcpt, copy),) = w.outbox("premium-fallback")
    assert rcpt == FALLBACK
    body = copy.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "relay refused the mail to konkurs@acme.pl" in body


async def test_a_billed_failed_vote_keeps_its_reason_when_its_copy_is_refused_later(tmp_path: Path) -> None:
    """Refused before the month ended, the vote went to the fallback and was billed `failed`, the
    refusal its reason (the row's note); the fallback refusing the copy after the month was billed
    leaves it `failed`, and its reason in the billed month as mailed: no correction is booked, the
    billing status being the same, and table mo says what became of the copy."""
    w = World(tmp_path)
    w.now = at(2027, 1, 31, 23, 50)
    w.service()
    await w.mo("KP123 vote A")
    w.now = at(2027, 1, 31, 23, 55)
    refuse(w, CLIENT)
    w.now = at(2027, 2, 1, 0, 5)
    mailed = await bill(w, JAN)
    ((billed,),) = [[(m["status"], m["reason"])] for m in read(mailed).sms]
    assert billed[0] == "failed" and "relay refused the mail to konkurs@acme.pl" in billed[1]

    w.now = at(2027, 2, 1, 8)
    refuse(w, FALLBACK)
    assert [r[0] for r in w.premium_mo()] == ["failed"]
    (note,) = w.store.db.conn.execute("SELECT note FROM mo").fetchone()
    assert FALLBACK in note

    again, _summary = written_again(w)
    assert again == mailed
    assert acme_file(w, FEB).sms == []
