"""MT corrections after an admin's retry: an attempt that ends unreported, a part on its way to the SMSC
when the admin retries again, and a retry of an MT billed `pending` (a real SQLite file, the store's own
claim, submit, report, expiry and retry calls, the scheduled run; the SMSC's answers are the store's calls
the adapters make, as no SMSC takes part in what is billed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from billing_reports import job, mtlate
from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway.store.db import Store
from gateway.store.records import Acceptance, NewMessage, NewPart
from tests.billing_reader import read
from tests.test_billing import TZ, add_account, at, setup


def _accept(store: Store, account: int, parts: int, validity: float) -> int:
    new = [NewPart(i, 0, b"x", b"", "x") for i in range(1, parts + 1)]
    msg = NewMessage("+48601123456", "+48100200300", "x" * parts, 0, new, concatenated=parts > 1)
    mail = Acceptance("anna@acme.example", "127.0.0.1", account, None, None, None, "", "x", [msg], validity)
    with store.db.transaction():
        return store.queue.insert_email(mail).message_ids[0]


def _go(store: Store, answers: list[str]) -> None:
    """The link claims what is due and the SMSC answers each submit: took it, or handed back (busy)."""
    for n, part in enumerate(store.queue.claim_due(10)):
        if answers[n] == "took":
            store.queue.mark_submitted(part.id, "main", f"s{part.id}-{n}", part.message_id)
        else:
            store.queue.release(part.id, delay=600.0)


def _report(store: Store, mid: int, seq: int, status: str) -> None:
    (smsc_id,) = store.db.conn.execute(
        "SELECT smsc_id FROM parts WHERE message_id = ? AND seq = ? AND state = 'submitted'", (mid, seq)
    ).fetchone()
    store.queue.record_report("main", smsc_id, status, None if status == "delivered" else "1", "x")


def _sms(cfg: Any, month: str) -> list[tuple[str, str]]:
    data = (cfg.state_dir / "billing" / month / "acme.txt").read_bytes()
    return [(r["parts"], r["status"]) for r in read(data).sms]


def _bill(store: Store, cfg: Any, clock: Any, when: float, month: Month) -> None:
    clock.now = when
    assert asyncio.run(job.run_due(store, cfg)) == [month]


def test_parts_a_retry_sent_are_billed_when_its_attempt_ends_unreported(tmp_path: Path) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2027, 3, 10))
    mid = _accept(store, add_account(store), 2, 86400.0)
    _go(store, ["took", "took"])
    _report(store, mid, 1, "failed")  # part 2 is never reported on: March bills it failed, 2 parts
    _bill(store, cfg, clock, at(2027, 4, 1, 0, 5), Month(2027, 3))
    clock.now = at(2027, 4, 5)
    assert store.admin.retry_message(mid, before_reset=mtlate.retried) == 1
    _go(store, ["took"])  # the SMSC takes part 1 again: paid for again
    clock.now = at(2027, 4, 8)
    store.queue.expire_due()  # no report by the end of its validity: `unreported`, billed pending
    assert store.db.conn.execute("SELECT state FROM messages").fetchone() == ("unreported",)
    _bill(store, cfg, clock, at(2027, 5, 1, 0, 5), Month(2027, 4))
    march, april = _sms(cfg, "2027-03"), _sms(cfg, "2027-04")
    assert march == [("2", "failed")]
    assert april == [("-2", "failed"), ("2", "pending"), ("-2", "pending"), ("3", "pending")]
    assert sum(int(p) for p, _s in march + april) == 3  # every submit the SMSC took, once
    written = (cfg.state_dir / "billing" / "2027-04" / "acme.txt").read_bytes()
    write_month(cfg.db_path, cfg.state_dir, Month(2027, 4), TZ)
    assert (cfg.state_dir / "billing" / "2027-04" / "acme.txt").read_bytes() == written


def test_a_part_on_its_way_when_the_admin_retries_again_is_billed(tmp_path: Path) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2027, 3, 10))
    mid = _accept(store, add_account(store), 3, 86400.0)
    claimed = store.queue.claim_due(10)
    store.queue.mark_submitted(claimed[0].id, "main", "s1", mid)
    store.queue.mark_part_final(claimed[1].id, "failed", "refused at submit", link="main")
    store.queue.release(claimed[2].id, delay=60.0)
    _report(store, mid, 1, "delivered")  # part 2 refused: the SMS failed in March, 3 parts billed
    _bill(store, cfg, clock, at(2027, 4, 1, 0, 5), Month(2027, 3))
    clock.now = at(2027, 4, 5)
    assert store.admin.retry_message(mid, before_reset=mtlate.retried) == 2  # parts 2 and 3 queued again
    wire, busy = store.queue.claim_due(10)
    store.queue.release(busy.id, delay=600.0)  # part 3 handed back: the link is busy
    clock.now = at(2027, 4, 5, 0, 1)
    # The admin pushes part 3 while part 2 is on the wire.
    assert store.admin.retry_message(mid, before_reset=mtlate.retried) == 1
    store.queue.mark_submitted(wire.id, "main", "s2", mid)  # the SMSC took part 2
    _go(store, ["took"])
    _report(store, mid, 2, "delivered")
    _report(store, mid, 3, "delivered")
    _bill(store, cfg, clock, at(2027, 5, 1, 0, 5), Month(2027, 4))
    march, april = _sms(cfg, "2027-03"), _sms(cfg, "2027-04")
    assert march == [("3", "failed")]
    assert april == [("-3", "failed"), ("3", "pending"), ("-3", "pending"), ("5", "delivered")]
    assert sum(int(p) for p, _s in march + april) == 5  # both parts the retries sent, once


def test_a_retry_of_an_sms_billed_pending_books_no_empty_pair(tmp_path: Path) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2027, 3, 31, 20))
    mid = _accept(store, add_account(store), 2, 3 * 86400.0)
    _go(store, ["took", "busy"])
    store.admin.hold_message(mid)  # part 2 held over the month's end: billed pending
    _bill(store, cfg, clock, at(2027, 4, 1, 0, 5), Month(2027, 3))
    clock.now = at(2027, 4, 2)
    assert store.admin.retry_message(mid, before_reset=mtlate.retried) == 1
    _go(store, ["took"])
    _report(store, mid, 1, "delivered")
    _report(store, mid, 2, "delivered")
    _bill(store, cfg, clock, at(2027, 5, 1, 0, 5), Month(2027, 4))
    assert _sms(cfg, "2027-03") == [("2", "pending")]
    assert _sms(cfg, "2027-04") == [("-2", "pending"), ("3", "delivered")]  # no pending then pending pair
