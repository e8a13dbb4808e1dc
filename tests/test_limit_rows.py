"""An email's limits travel as plain rows, and are the quotas they were.

`Limits` crosses from the intake worker to the daemon with every mail. It carried four frozen
`Quota` objects (the user's and the account's, monthly and daily), built in the worker, pickled and
rebuilt in the daemon for each mail: some 35,000 of the daemon's instructions a mail, where most
users and accounts have no limit at all. It now carries (owner, scope, monthly, daily) rows and makes
the quotas where a limit is set (`gateway.smtp.maillimits`). Held here to the quotas as they were
made, moved into a new period and replaced by the limits in force at the write, over random users,
accounts, limits, clocks and admins' changes, on a real SQLite store; and the refusals a real SMTP
session gets stay word for word in tests/test_limits_senders.py and tests/test_refusals_say_what.py.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from acl.limits import Quota, period_keys
from gateway.smtp import latechecks
from gateway.smtp.accept import accept_now, limits_for
from gateway.store.db import Store
from gateway.store.records import Acceptance, NewMessage, NewPart
from tests.conftest import free_port, make_config

ZONES: list[Any] = [
    ZoneInfo("Europe/Warsaw"),
    ZoneInfo("America/St_Johns"),
    UTC,
    timezone(timedelta(hours=5)),
]
LIMITS = [None, None, 0, 1, 3, 500]


def quotas_as_they_were(now: datetime, user: Any, account: Any) -> list[Quota]:
    """`acl.limits.quotas` and `limits_for`'s filter as they were, four Quota objects at compose."""
    keys = period_keys(now)
    zone = getattr(now.tzinfo, "key", None) or now.tzname() or ""
    user_row = (user.id, user.email, user.monthly_limit, user.daily_limit) if user else (0, "-", None, None)
    account_row = (account.id, account.name, account.monthly_limit, account.daily_limit)
    out = []
    for kind, (ident, name, monthly, daily) in (("user", user_row), ("account", account_row)):
        for period, limit in (("monthly", monthly), ("daily", daily)):
            out.append(Quota(f"{kind} {name}", f"{kind}:{ident}", period, keys[period], limit, zone))
    return out if user is not None else [q for q in out if not q.scope.startswith("user:")]


def moved_as_they_were(quotas: list[Quota], when: float, zone: Any) -> list[Quota]:
    """`Limits.at` as it was: each quota's key in the period of the write's clock."""
    keys = period_keys(datetime.fromtimestamp(when, zone))
    return [replace(q, key=keys[q.period]) for q in quotas]


def in_force_as_they_were(quotas: list[Quota], in_force: dict[str, tuple[Any, Any]]) -> list[Quota]:
    """`latechecks.limits_now` as it was: each quota's limit as the admin has it now."""
    out = []
    for q in quotas:
        now = in_force.get(q.scope)
        out.append(q if now is None else replace(q, limit=now[q.period != "monthly"]))
    return out


def acceptance(account_id: int, user_id: int | None) -> Acceptance:
    message = NewMessage("+48601123456", "smsgw", "Hello", 0, [NewPart(1, 0, b"Hello", b"", "Hello")])
    return Acceptance(
        "anna@acme.example", "192.0.2.1", account_id, user_id, None, None, "", "Hello", [message], 86400.0
    )


def test_the_limits_are_the_quotas_they_were_through_a_new_period_and_an_admins_change(
    tmp_path: Path,
) -> None:
    rng = random.Random(2026_12_06)
    clock = [datetime(2026, 3, 31, 23, 0, tzinfo=UTC).timestamp()]
    store = Store.open(tmp_path / "smsgw.db", clock=lambda: clock[0])
    cfg = make_config(tmp_path, smsc_port=free_port())
    set_limits = 0
    try:
        account = store.accounts.add_account("acme")
        user = store.accounts.add_user("anna@acme.example", "acme")
        for _ in range(400):
            account_limits = dict(monthly_limit=rng.choice(LIMITS), daily_limit=rng.choice(LIMITS))
            user_limits = dict(monthly_limit=rng.choice(LIMITS), daily_limit=rng.choice(LIMITS))
            store.accounts.update_account("acme", **account_limits)
            store.accounts.set_user(user.email, **user_limits)
            sender = store.accounts.find_user(user.email) if rng.random() < 0.8 else None
            read = store.accounts.account_by_id(account.id)
            zone = rng.choice(ZONES)
            # Across the ends of days and months (and a year), in zones whose midnight is not UTC's.
            composed_at = rng.choice([datetime(2026, 3, 31, 23, 59, 59, tzinfo=zone).timestamp(),
                                      datetime(2026, 12, 31, 23, 59, 59, tzinfo=zone).timestamp(),
                                      datetime(2026, 6, 15, 12, 0, tzinfo=zone).timestamp()])  # fmt: skip
            written_at = composed_at + rng.choice([0.0, 0.5, 2.0, 3600.0 * 25])
            composed = datetime.fromtimestamp(composed_at, zone)
            limits = limits_for(
                cfg, account=read, user=sender, numbers=["+48601123456"], text="Hello", parts=2, now=composed
            )
            expected = quotas_as_they_were(composed, sender, read)
            assert list(limits.quotas) == expected
            moved = limits.at(written_at)
            expected = moved_as_they_were(expected, written_at, zone)
            assert list(moved.quotas) == expected
            # An admin changes some limits between MAIL and the write (or nothing changes).
            if rng.random() < 0.5:
                store.accounts.update_account("acme", monthly_limit=rng.choice(LIMITS))
            if rng.random() < 0.5:
                store.accounts.set_user(user.email, daily_limit=rng.choice(LIMITS))
            now = store.accounts.account_by_id(account.id)
            in_force = {f"account:{account.id}": (now.monthly_limit, now.daily_limit)}
            if sender is not None:
                u = store.accounts.find_user(user.email)
                in_force[f"user:{u.id}"] = (u.monthly_limit, u.daily_limit)
            clock[0] = written_at
            with store.db.transaction():
                rechecked = latechecks.limits_now(store, acceptance(account.id, sender and sender.id), moved)
            assert list(rechecked.quotas) == in_force_as_they_were(expected, in_force)
            if expected == in_force_as_they_were(expected, in_force):
                assert rechecked is moved  # nothing changed: no new object a mail
            set_limits += any(q.limit is not None for q in rechecked.quotas)
    finally:
        store.close()
    assert 100 < set_limits < 400  # both: mails with a limit to check and without


def test_a_limit_refuses_as_it_did_and_no_limit_reads_no_counter(tmp_path: Path) -> None:
    clock = [datetime(2026, 5, 20, 10, 0, tzinfo=ZoneInfo("Europe/Warsaw")).timestamp()]
    store = Store.open(tmp_path / "smsgw.db", clock=lambda: clock[0])
    cfg = make_config(tmp_path, smsc_port=free_port())
    try:
        account = store.accounts.add_account("acme")
        user = store.accounts.add_user("anna@acme.example", "acme")
        now = datetime.fromtimestamp(clock[0], ZoneInfo("Europe/Warsaw"))

        def send() -> Any:
            read, sender = store.accounts.account_by_id(account.id), store.accounts.find_user(user.email)
            limits = limits_for(
                cfg,
                account=read,
                user=sender,
                numbers=["+48601123456"],
                text=f"Hello {clock[0]}",
                parts=2,
                now=now,
            )
            clock[0] += 1.0
            with store.db.transaction():
                return accept_now(store, acceptance(account.id, user.id), limits, ())

        reads: list[str] = []
        store.db.conn.set_trace_callback(lambda sql: reads.append(sql) if "FROM usage" in sql else None)
        assert send().refused is None
        assert reads == []  # no limit set: no counter read in the write
        store.accounts.set_user(user.email, daily_limit=4)
        assert send().refused is None
        refused = send().refused
        assert refused is not None and refused.startswith(
            "550 5.7.1 Daily limit of user anna@acme.example: 4 parts, used 4, this email needs 2; the count"
            " starts again at midnight (Europe/Warsaw)"
        )
    finally:
        store.close()


def test_a_mails_limits_cross_to_the_daemon_as_rows_not_quota_objects(tmp_path: Path) -> None:
    # What crosses is the Limits' fields: plain rows, no Quota (four were built, sent and rebuilt a mail).
    store = Store.open(tmp_path / "smsgw.db")
    try:
        account = store.accounts.add_account("acme")
        user = store.accounts.add_user("anna@acme.example", "acme")
        cfg = make_config(tmp_path, smsc_port=free_port())
        now = datetime(2026, 5, 20, 10, 0, tzinfo=ZoneInfo("Europe/Warsaw"))
        limits = limits_for(
            cfg, account=account, user=user, numbers=["+48601123456"], text="Hi", parts=1, now=now
        )
    finally:
        store.close()
    carried = [getattr(limits, f.name) for f in dataclasses.fields(limits)]
    assert not any(isinstance(v, Quota) for v in carried), carried
    plain = (str, int, type(None))
    assert [tuple(type(v) in plain for v in row) for row in limits.limit_rows] == [(True,) * 4] * 2, (
        limits.limit_rows
    )
