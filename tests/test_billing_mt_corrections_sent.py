"""MT corrections: the bill time a one-account `--send` mailed by, parts queued again that never went,
a `pending` reason, and the months after many retries (a real SQLite file, the CLI, the scheduled run;
the SMS's parts are set as the dispatcher leaves them, as no SMSC takes part in what is billed)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from billing_reports import job, mtlate
from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway.store.db import Store
from tests.billing_reader import read
from tests.test_billing import TZ, add_account, at, setup


def _mt(store: Store, account: int, ts: float, state: str, parts: list[tuple[str, float | None]]) -> int:
    """An MT with its parts as (state, submitted_at); ended at `ts` + 1 h if `state` is final."""
    conn = store.db.conn
    final = state in ("delivered", "failed", "expired", "cancelled")
    with store.db.transaction():
        email = conn.execute(
            "INSERT INTO emails (account_id, mail_from, text, received_at) VALUES (?,?,?,?)",
            (account, "anna@acme.example", "x", ts),
        ).lastrowid
        mid = conn.execute(
            "INSERT INTO messages (email_id, account_id, recipient, source, text, coding, parts_total, state,"
            " created_at, expires_at, finished_at, reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (email, account, "+48601123456", "+48100200300", "x", 0, len(parts), state, ts, ts + 86400,
             ts + 3600 if final else None, "x" if state == "failed" else None),
        ).lastrowid  # fmt: skip
        for seq, (pstate, sub) in enumerate(parts, 1):
            conn.execute(
                "INSERT INTO parts (message_id, seq, state, next_attempt_at, expires_at, destination, source,"
                " data_coding, payload, udh, text, submitted_at, smsc_id, account_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (mid, seq, pstate, ts, ts + 86400, "+48601123456", "+48100200300", 0, b"x", b"", "x", sub,
                 "s1" if sub else None, account),
            )  # fmt: skip
    return int(mid)


def _settle(store: Store, mid: int, state: str, now: float, submitted: bool = True) -> None:
    """The parts a retry queued end (having reached the SMSC or not), and the SMS with them."""
    conn = store.db.conn
    with store.db.transaction():
        conn.execute(
            "UPDATE parts SET state = ?, submitted_at = ?, done_at = ?"
            " WHERE message_id = ? AND state = 'queued'",
            (state, now if submitted else None, now, mid),
        )
        conn.execute("UPDATE messages SET state = ?, finished_at = ? WHERE id = ?", (state, now, mid))


def _file(cfg: Any, month: object) -> bytes:
    return (cfg.state_dir / "billing" / str(month) / "acme.txt").read_bytes()


def _parts(*files: bytes) -> int:
    return sum(int(r["parts"]) for data in files for r in read(data).sms)


def test_a_retry_after_one_accounts_file_was_mailed_is_a_correction(tmp_path: Path) -> None:
    from gateway.cli.main import main

    month = Month.containing(time.time(), TZ).previous()  # `--send` wants a month ended by the wall clock
    start = month.bounds(TZ)[0]
    cfg, store, clock, path = setup(tmp_path, start + 3600)
    mid = _mt(store, add_account(store), start + 86400, "failed", [("failed", start + 86400)])
    clock.now = time.time()
    assert (
        main(["-c", str(path), "billing", "run", "--month", str(month), "--account", "acme", "--send"]) == 0
    )
    mailed = _file(cfg, month)
    clock.now = time.time() + 60
    store.admin.retry_message(mid, before_reset=mtlate.retried)
    clock.now += 60
    _settle(store, mid, "delivered", clock.now)
    clock.now += 60
    assert asyncio.run(job.run_due(store, cfg)) == [month]  # acme's file is not mailed again
    assert _file(cfg, month) == mailed
    write_month(cfg.db_path, cfg.state_dir, month.next(), TZ)
    assert _parts(mailed, _file(cfg, month.next())) == 2  # both submits on a mailed bill


def test_parts_queued_again_that_never_went_are_not_billed(tmp_path: Path) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2027, 3, 1))
    acme = add_account(store)
    after = _mt(store, acme, at(2027, 3, 10), "failed", [("failed", at(2027, 3, 10))])
    before = _mt(store, acme, at(2027, 3, 11), "failed", [("failed", at(2027, 3, 11))])
    went = _mt(store, acme, at(2027, 3, 12), "failed", [("delivered", at(2027, 3, 12)), ("failed", 1.0)])
    clock.now = at(2027, 3, 20)
    # Queued again before the bill; it expires in the queue.
    store.admin.retry_message(before, before_reset=mtlate.retried)
    _settle(store, before, "expired", at(2027, 3, 21), submitted=False)
    clock.now = at(2027, 4, 1, 0, 5)
    assert asyncio.run(job.run_due(store, cfg)) == [Month(2027, 3)]
    march = read(_file(cfg, "2027-03")).sms
    assert [(r["parts"], r["status"]) for r in march] == [("1", "failed"), ("1", "expired"), ("2", "failed")]
    clock.now = at(2027, 4, 2, 10)
    store.admin.retry_message(after, before_reset=mtlate.retried)  # the link is down: nothing is submitted
    store.admin.retry_message(went, before_reset=mtlate.retried)
    clock.now = at(2027, 4, 3, 10)
    store.admin.cancel_message(after, claimed="end")  # the admin gives up: the part never went again
    _settle(store, went, "delivered", at(2027, 4, 3, 11))  # this one went, and is paid for again
    clock.now = at(2027, 5, 1, 0, 5)
    assert asyncio.run(job.run_due(store, cfg)) == [Month(2027, 4)]
    april = read(_file(cfg, "2027-04")).sms
    assert [(r["parts"], r["status"]) for r in april] == [
        ("-1", "failed"), ("1", "pending"), ("-2", "failed"), ("2", "pending"),
        ("-1", "pending"), ("1", "failed"), ("-2", "pending"), ("3", "delivered"),
    ]  # fmt: skip
    assert "queued again by a retry on 2027-04-02 10:00:00" in april[1]["reason"]
    assert "1 part(s) queued again by the retry reached the SMSC" in april[7]["reason"]
    clock.now = at(2027, 5, 5)
    # A record keeps what the attempt before it sent: April stays.
    store.admin.retry_message(went, before_reset=mtlate.retried)
    write_month(cfg.db_path, cfg.state_dir, Month(2027, 4), TZ)
    assert read(_file(cfg, "2027-04")).sms == april


def test_an_sms_billed_pending_is_written_again_as_mailed(tmp_path: Path) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2027, 3, 1))
    mid = _mt(store, add_account(store), at(2027, 3, 30), "queued", [("queued", None)])
    clock.now = at(2027, 3, 30, 1)
    store.admin.hold_message(mid)
    clock.now = at(2027, 4, 1, 0, 5)
    assert asyncio.run(job.run_due(store, cfg)) == [Month(2027, 3)]
    mailed = _file(cfg, "2027-03")
    assert [(r["status"], r["reason"]) for r in read(mailed).sms] == [("pending", "")]
    clock.now = at(2027, 4, 2, 10)
    store.admin.cancel_message(mid, claimed="end")
    write_month(cfg.db_path, cfg.state_dir, Month(2027, 3), TZ)
    assert _file(cfg, "2027-03") == mailed


def test_many_retry_records_are_read_in_batches(tmp_path: Path) -> None:
    _cfg, store, _clock, _ = setup(tmp_path, at(2027, 3, 1))
    acme, c, n = add_account(store), store.db.conn, 1000  # over one batch of ids
    first = _mt(store, acme, at(2027, 3, 2), "delivered", [("delivered", at(2027, 3, 2))])
    copy = (
        "INSERT INTO messages (email_id, account_id, recipient, source, text, coding, parts_total, state,"
        " created_at, expires_at, finished_at) SELECT email_id, account_id, recipient, source, text,"
        " coding, 1, 'delivered', ?, expires_at, ? FROM messages WHERE id = ?"
    )
    with store.db.transaction():
        for i in range(n):
            ts = at(2027, 3, 2) + i
            mid = c.execute(copy, (ts, ts + 5, first)).lastrowid if i else first
            rec = [{"r": at(2027, 4, 2), "c": ts, "s": "failed", "why": "x", "f": ts, "m": 0, "q": [1]}]
            rec[0].update({"b": "failed", "bwhy": "x", "p": 1, "n": 0})  # an older layout's fields too
            key = mtlate.retried_key(acme, int(mid or 0))
            c.execute("INSERT INTO billing_state VALUES (?, ?)", (key, json.dumps(rec)))
        mtlate.record_as_of(c, Month(2027, 3), TZ, at(2027, 4, 1, 0, 5))
        mtlate.record_as_of(c, Month(2027, 4), TZ, at(2027, 5, 1, 0, 5))
    queries: list[str] = []
    c.set_trace_callback(queries.append)
    try:
        assert len(mtlate.lines(c, acme, Month(2027, 4), TZ)) == 2 * n
        during = len(queries)
        queries.clear()
        assert mtlate.lines(c, acme, Month(2027, 5), TZ) == []
    finally:
        c.set_trace_callback(None)
    assert during < 20 and len(queries) < 20  # not one query for each record
