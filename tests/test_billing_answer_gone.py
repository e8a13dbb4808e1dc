"""An answer to the SMS of a user who is gone is billed to the account whose SMS it answered (R-5.2).

Its user removed, moved to another account, or the address added again since, the answer goes to the
fallback address (or the account's inbound address), yet it is still that account's traffic, on its
number: its billing file had no MO-reply line for it (1 answer of 6 billed in a probe). Real store on
a SQLite file, the MO handler the daemon runs, the month's files written and read back as a
receiver's script would (`tests.billing_reader`); clock injected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway.conversations import handlers
from gateway.conversations.repo import ConversationsRepo
from gateway.store.db import Store
from tests.billing_reader import read
from tests.test_billing import TZ, Clock, add_account, at, setup

PHONE, OURS = "+48601123456", "+48100200300"
ANNA = "anna@acme.example"
FALLBACK = '[replies]\nfallback_address = "ops@example.com"'


class Traffic:
    """Anna's SMS to the phone and the phone's answers, through the handlers on a real store."""

    def __init__(self, store: Store, cfg: Any, clock: Clock, number: str = OURS) -> None:
        self.store, self.cfg, self.clock, self.number = store, cfg, clock, number
        self.conversations = ConversationsRepo(store.db, store.clock)

    def sms(self, account_id: int, ts: float, user: str = ANNA) -> None:
        self.clock.now = ts
        self.conversations.record_mt(
            phone=PHONE, number=self.number, user_email=user, account_id=account_id,
            domain="sms.example.com", header_message_id=None, subject="Offer", text="Umowa?",
        )  # fmt: skip

    def answer(self, ts: float) -> str:
        self.clock.now = ts
        text = f"Tak, {ts:.0f}"  # the same text again soon after would be the SMSC's redelivery
        mo_id = self.store.mo.record_mo("main", PHONE, self.number, text, 0, None)
        assert mo_id is not None
        return handlers.on_whole_mo(self.store, self.cfg, mo_id, earlier=self.store.mo.redelivery_of(mo_id))


def replies(cfg: Any) -> dict[str, list[tuple[str, str, str]]]:
    """Each account's MO-reply lines of February 2026: (date time, status, reason)."""
    files = write_month(cfg.db_path, cfg.state_dir, Month(2026, 2), TZ)
    out: dict[str, list[tuple[str, str, str]]] = {}
    for f in files.accounts:
        rows = read(f.path.read_bytes()).sms
        out[f.account] = [
            (f"{r['date']} {r['time']}", r["status"], r["reason"]) for r in rows if r["kind"] == "MO-reply"
        ]
    return out


def test_answers_to_a_removed_moved_or_replaced_users_sms_are_billed_to_the_account_it_answered(
    tmp_path: Path,
) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 10), extra=FALLBACK)
    acme, _beta = add_account(store, "acme"), add_account(store, "beta")
    t = Traffic(store, cfg, clock)
    store.accounts.add_user(ANNA, "acme")

    t.sms(acme, at(2026, 2, 2, 9))
    assert t.answer(at(2026, 2, 2, 10)) == "mailed"  # the usual case, for comparison
    clock.now = at(2026, 2, 2, 11)
    store.accounts.remove_user(ANNA)  # she leaves
    assert t.answer(at(2026, 2, 2, 12)) == "fallback"

    clock.now = at(2026, 2, 3, 8)
    store.accounts.add_user(ANNA, "acme")  # a new employee gets the address
    assert t.answer(at(2026, 2, 3, 10)) == "fallback"  # the predecessor's SMS: not the new holder's

    t.sms(acme, at(2026, 2, 4, 9))  # the new holder texts the phone: the conversation is theirs
    clock.now = at(2026, 2, 4, 11)
    store.accounts.remove_user(ANNA)
    store.accounts.add_user(ANNA, "beta")  # and moves to beta without texting the phone from there
    assert t.answer(at(2026, 2, 4, 12)) == "fallback"

    states = store.db.conn.execute("SELECT state, account_id FROM mo ORDER BY id").fetchall()
    assert states == [("mailed", acme), ("fallback", acme), ("fallback", acme), ("fallback", acme)]
    assert replies(cfg) == {
        "acme": [
            ("2026-02-02 10:00:00", "delivered", ""),
            ("2026-02-02 12:00:00", "delivered", ""),
            ("2026-02-03 10:00:00", "delivered", ""),
            ("2026-02-04 12:00:00", "delivered", ""),
        ],
        "beta": [],  # never the user's new account's
    }


def test_without_a_fallback_the_answer_is_recorded_unmatched_and_still_billed(tmp_path: Path) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 10))
    acme = add_account(store, "acme")
    t = Traffic(store, cfg, clock)
    store.accounts.add_user(ANNA, "acme")
    t.sms(acme, at(2026, 2, 2, 9))
    clock.now = at(2026, 2, 2, 11)
    store.accounts.remove_user(ANNA)
    assert t.answer(at(2026, 2, 2, 12)) == "unmatched"
    # The company's file says it as the company reads it (`inbound.told`); `mo list` says "of the gateway".
    reason = f"it answers {ANNA}, who is no longer a user of this account"
    assert replies(cfg) == {"acme": [("2026-02-02 12:00:00", "failed", reason)]}


def test_an_answer_to_the_accounts_inbound_address_is_billed_to_it(tmp_path: Path) -> None:
    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 10), extra=FALLBACK)
    own = "+48100200399"  # acme's alone (not the default sender every account without one shares)
    acme = store.accounts.add_account("acme", sender=own).id
    store.accounts.update_account("acme", inbound_address="recepcja@acme.example")
    t = Traffic(store, cfg, clock, own)
    store.accounts.add_user(ANNA, "acme")
    t.sms(acme, at(2026, 2, 2, 9))
    clock.now = at(2026, 2, 2, 11)
    store.accounts.remove_user(ANNA)
    assert t.answer(at(2026, 2, 2, 12)) == "fallback"
    [(rcpt,)] = store.db.conn.execute("SELECT rcpt FROM outbox").fetchall()
    assert rcpt == "recepcja@acme.example"
    assert replies(cfg) == {"acme": [("2026-02-02 12:00:00", "delivered", "")]}


def test_an_answer_past_the_window_answers_no_sms_and_is_billed_to_no_account(tmp_path: Path) -> None:
    # Unchanged: no SMS of the window to answer, so no account's (the note names the last one).
    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 10), extra=FALLBACK)
    acme = add_account(store, "acme")
    t = Traffic(store, cfg, clock)
    store.accounts.add_user(ANNA, "acme")
    t.sms(acme, at(2026, 2, 2, 9))
    assert t.answer(at(2026, 2, 20, 12)) == "fallback"
    assert store.db.conn.execute("SELECT account_id FROM mo").fetchall() == [(None,)]
    assert replies(cfg) == {"acme": []}


def test_an_answer_kept_past_the_hourly_limit_stays_billed_when_it_is_mailed(tmp_path: Path) -> None:
    # The second answer within the hour is kept (throttled), billed; the kept answers' mail later
    # reset its account to none, and it dropped out of the billing file.
    from gateway.conversations import kept

    cfg, store, clock, _ = setup(tmp_path, at(2026, 1, 10), extra=FALLBACK + "\nmails_per_phone_per_hour = 1")
    acme = add_account(store, "acme")
    t = Traffic(store, cfg, clock)
    store.accounts.add_user(ANNA, "acme")
    t.sms(acme, at(2026, 2, 2, 9))
    clock.now = at(2026, 2, 2, 11)
    store.accounts.remove_user(ANNA)
    assert (t.answer(at(2026, 2, 2, 12)), t.answer(at(2026, 2, 2, 12, 5))) == ("fallback", "throttled")
    clock.now = at(2026, 2, 2, 14)
    kept.mail_due(store, cfg)
    rows = store.db.conn.execute("SELECT state, account_id FROM mo ORDER BY id").fetchall()
    assert rows == [("fallback", acme), ("fallback", acme)], rows
    assert [when for when, _status, _reason in replies(cfg)["acme"]] == [
        "2026-02-02 12:00:00",
        "2026-02-02 12:05:00",
    ]
