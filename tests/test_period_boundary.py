"""A mail composed a moment before a month's end and written after it: its usage counter and its
billing row name the same month, both from the clock the write stamps the rows with.

A real SQLite store whose injected clock moves between the compose (the SMTP session) and the
write (the accepting transaction), as a queue of writes or a slow disk makes it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.smtp.accept import accept_now, limits_for
from gateway.store.db import Store
from gateway.store.records import Acceptance, NewMessage, NewPart
from tests.conftest import free_port, make_config

TZ = ZoneInfo("Europe/Warsaw")
MIDNIGHT = datetime(2026, 4, 1, tzinfo=TZ).timestamp()  # March ends, in the installation's zone


def acceptance(account_id: int) -> Acceptance:
    message = NewMessage("+48601123456", "smsgw", "Hello", 0, [NewPart(1, 0, b"Hello", b"", "Hello")])
    return Acceptance(
        "anna@acme.example", "192.0.2.1", account_id, None, None, None, "", "Hello", [message], 86400.0
    )


def test_a_mail_written_after_the_month_ended_is_counted_in_the_month_it_is_billed_in(tmp_path: Path) -> None:
    now = [MIDNIGHT - 0.2]
    store = Store.open(tmp_path / "smsgw.db", clock=lambda: now[0])
    try:
        account = store.accounts.add_account("acme")
        cfg = make_config(tmp_path, smsc_port=free_port())
        composed = datetime.fromtimestamp(now[0], TZ)  # 23:59:59.8 on 31 March
        limits = limits_for(
            cfg, account=account, user=None, numbers=["+48601123456"], text="Hello", parts=1, now=composed
        )
        now[0] = MIDNIGHT + 0.2  # the write begins on 1 April
        with store.db.transaction():
            result = accept_now(store, acceptance(account.id), limits, ())
        assert result.email_id is not None and result.refused is None
        (created,) = store.db.conn.execute("SELECT created_at FROM messages").fetchone()
        billed = datetime.fromtimestamp(created, TZ)
        assert (billed.year, billed.month, billed.day) == (2026, 4, 1)
        scope = f"account:{account.id}"
        assert [
            store.accounts.usage(scope, p) for p in ("2026-03", "2026-03-31", "2026-04", "2026-04-01")
        ] == [
            0,
            0,
            1,
            1,
        ]
    finally:
        store.close()


def test_a_mail_written_within_its_month_keeps_the_limits_it_was_composed_with(tmp_path: Path) -> None:
    now = [MIDNIGHT - 60.0]
    store = Store.open(tmp_path / "smsgw.db", clock=lambda: now[0])
    try:
        account = store.accounts.add_account("acme")
        cfg = make_config(tmp_path, smsc_port=free_port())
        composed = datetime.fromtimestamp(now[0], TZ)
        limits = limits_for(
            cfg, account=account, user=None, numbers=["+48601123456"], text="Hello", parts=1, now=composed
        )
        assert limits.at(now[0] + 1.0) is limits  # the same periods: nothing rebuilt per mail
        with store.db.transaction():
            accept_now(store, acceptance(account.id), limits, ())
        assert store.accounts.usage(f"account:{account.id}", "2026-03") == 1
    finally:
        store.close()
