# ruff: noqa: F811  (the tests take test_store's `store` fixture, imported by name)
"""A part the SMSC took whose delivery report never comes: it ends `unreported`, final and no failure.

It stayed `submitted` for ever (its message never final, its number and text kept past the
retention); ending it `expired` instead (e8bf396, taken back) bounced an SMS that most likely
arrived as "Undelivered" and counted it towards the account's automatic suspension. The store's
promises on a real SQLite file, then the daemon against a fake SMSC over TCP that answers every
submit with a message id and never sends a receipt.
"""

from __future__ import annotations

import dataclasses
import email
import sqlite3
import time
from email import policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing_reports import monthly
from gateway import housekeeping, retentionpurge
from gateway.smtp.accept import accept
from gateway.store.db import Store
from gateway.store.schema import SCHEMA_VERSION
from tests.conftest import DOMAIN, STAFF, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HeldSMSC
from tests.test_store import (  # `store`: test_store's fixture, on a Clock
    acceptance,
    store,  # noqa: F401
    undo_migration_22,
)
from tests.web_helpers import ADMIN, OPERATOR, add_mail, as_user, seeded_store, web_context

DAY = 24 * 3600.0
VALIDITY = 3600.0  # `acceptance()`'s


def later(store: Store, seconds: float) -> None:
    store.clock.t += seconds  # type: ignore[attr-defined]


async def sent(store: Store, parts: int = 1, account: int | None = None) -> tuple[int, list[int]]:
    """One SMS of `parts` parts accepted and taken by the SMSC (ids `x<part id>`): (message, parts)."""
    res = await accept(store, dataclasses.replace(acceptance(["+48601123456"], parts), account_id=account))
    claimed = store.queue.claim_due(10)
    for p in claimed:
        store.queue.mark_submitted(p.id, "main", f"x{p.id}")
    return res.message_ids[0], [p.id for p in claimed]


def message(store: Store, mid: int) -> tuple[str, str | None, float | None]:
    sql = "SELECT state, reason, finished_at FROM messages WHERE id = ?"
    return store.db.conn.execute(sql, (mid,)).fetchone()


def part_states(store: Store, mid: int) -> list[str]:
    sql = "SELECT state FROM parts WHERE message_id = ? ORDER BY seq"
    return [r[0] for r in store.db.conn.execute(sql, (mid,))]


async def test_a_part_whose_report_never_comes_ends_unreported_a_day_after_its_validity(store: Store) -> None:
    mid, (part,) = await sent(store)
    later(store, VALIDITY + 1)  # the validity is over: its report may still come (the SMSC's expiry)
    assert store.queue.expire_due() == []
    assert message(store, mid)[0] == "submitted"
    later(store, DAY)
    (finished,) = store.queue.expire_due()
    assert (finished.message_id, finished.state) == (mid, "unreported")
    assert finished.reason == "sent; the SMSC sent no delivery report"
    state, reason, finished_at = message(store, mid)
    assert (state, reason, finished_at) == ("unreported", finished.reason, store.clock())
    error = store.db.conn.execute("SELECT error FROM parts WHERE id = ?", (part,)).fetchone()[0]
    assert "no delivery report" in error
    assert store.queue.expire_due() == []  # told once


async def test_a_receipt_after_the_part_went_unreported_is_kept_unmatched(store: Store) -> None:
    # The SMSC's ids repeat: a day past the validity a receipt with the id more likely belongs to a
    # later SMS; the settled message is not changed nor told again.
    mid, (part,) = await sent(store)
    later(store, VALIDITY + DAY)
    assert len(store.queue.expire_due()) == 1
    assert store.queue.record_report("main", f"x{part}", "failed", "UNDELIV", "raw") == []
    assert message(store, mid)[0] == "unreported" and part_states(store, mid) == ["unreported"]
    sql = "SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL"
    assert store.db.conn.execute(sql).fetchone()[0] == 1


async def test_a_long_sms_with_one_part_unreported_is_sent_with_that_part_unconfirmed(store: Store) -> None:
    mid, parts = await sent(store, parts=3)
    for p in (parts[0], parts[2]):
        assert store.queue.record_report("main", f"x{p}", "delivered", None, "raw") == []
    later(store, VALIDITY + DAY)
    (finished,) = store.queue.expire_due()
    assert finished.state == "unreported"
    assert finished.reason == "sent, delivery of part 2 of 3 unconfirmed: the SMSC sent no delivery report"
    assert part_states(store, mid) == ["delivered", "unreported", "delivered"]
    # A failed part still fails its message, whatever became of the others.
    failing, parts = await sent(store, parts=2)
    store.queue.record_report("main", f"x{parts[0]}", "failed", "UNDELIV", "raw")
    later(store, VALIDITY + DAY)
    assert store.queue.expire_due() == []  # its message was told when it failed
    assert message(store, failing)[0] == "failed"
    assert part_states(store, failing) == ["failed", "unreported"]


async def test_unreported_counts_as_no_failure_for_suspension_and_is_billed_as_sent(store: Store) -> None:
    acme = store.accounts.add_account("acme").id
    mid, _ = await sent(store, parts=2, account=acme)
    later(store, VALIDITY + DAY)
    store.queue.expire_due()
    assert message(store, mid)[0] == "unreported"
    assert store.policy.failure_share(acme, 50) == (0, 0)  # e8bf396's `expired`: (1, 1)
    tz = ZoneInfo("Europe/Warsaw")
    (line,) = list(monthly.lines(store.db.conn, acme, monthly.Month.containing(store.clock(), tz), tz))
    # As a `submitted` SMS is: its parts counted, status `pending` (the file's layout has no other).
    assert (line.row_id, line.parts, line.status, line.sms) == (mid, 2, "pending", 1)


async def test_the_retention_purges_an_unreported_message(store: Store) -> None:
    await sent(store)
    later(store, VALIDITY + DAY)
    store.queue.expire_due()
    later(store, 91 * DAY)
    assert await retentionpurge.purge_before(store, store.clock() - 90 * DAY) == 1
    assert store.db.conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_a_database_from_before_opens_with_the_index_without_unreported_messages(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "db.sqlite")
    conn = s.db.conn
    undo_migration_22(conn)
    conn.execute("DROP INDEX messages_waiting")  # as migration 4 made it
    conn.execute(
        "CREATE INDEX messages_waiting ON messages(account_id, id)"
        " WHERE state NOT IN ('submitted', 'delivered', 'failed', 'expired', 'cancelled')"
    )
    conn.execute("UPDATE schema_version SET version = 18")
    s.close()
    s = Store.open(tmp_path / "db.sqlite")
    try:
        assert s.db.conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        # Migration 19 made it without unreported messages; 35 dropped it (the claim reads parts by account).
        sql = "SELECT sql FROM sqlite_master WHERE name = 'messages_waiting'"
        assert s.db.conn.execute(sql).fetchone() is None
    finally:
        s.close()
    with sqlite3.connect(tmp_path / "db.sqlite") as plain:
        assert plain.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_the_panel_finds_unreported_messages_and_says_what_they_are(tmp_path: Path) -> None:
    panel = seeded_store(tmp_path)
    mid = add_mail(panel, "acme", ADMIN, "+48601000001", "Will it arrive?")
    (part,) = [r[0] for r in panel.db.conn.execute("SELECT id FROM parts WHERE message_id = ?", (mid,))]
    panel.queue.mark_submitted(part, "main", "x1")
    with panel.db.transaction():  # its validity and the day after it are over
        panel.db.conn.execute("UPDATE parts SET expires_at = ? WHERE id = ?", (panel.clock() - DAY - 1, part))
    assert [f.state for f in panel.queue.expire_due()] == ["unreported"]
    web = web_context(tmp_path, panel)
    try:
        async with as_user(web, OPERATOR) as c:
            found = await c.get("/messages?state=unreported")
            assert found.status_code == 200, found.text
            assert f'href="/messages/{mid}"' in found.text
            assert "sent; the SMSC sent no delivery report" in found.text
            assert "unreported" in (await c.get(f"/messages/{mid}")).text
    finally:
        web.counts.close()
        panel.close()


# ---- the daemon ------------------------------------------------------------------------------------


def unreported_config(tmp_path: Path, smsc_port: int, sink_port: int) -> Any:
    # One failure in one message would suspend the account: an unreported SMS must not.
    return make_config(
        tmp_path,
        smsc_port=smsc_port,
        relay_port=sink_port,
        validity_hours=1,
        suspend_after=1,
        suspend_failed_share=0.01,
    )


async def test_daemon_ends_an_unreported_sms_without_bounce_or_suspension(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    monkeypatch.setattr(housekeeping, "STATUS_INTERVAL", 0.05)
    sink_port, skew = free_port(), [0.0]
    async with HeldSMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = unreported_config(tmp_path, smsc.port, sink_port)
        async with running_gateway(cfg, lambda: time.time() + skew[0]) as gw:
            await gw.send(mail(f"601123456@{DOMAIN}", "Will it arrive?"))
            await smsc.wait_for(1)
            smsc.answer()  # with its message id; no receipt ever follows
            await gw.until(lambda: gw.states() == ["submitted"])
            skew[0] = VALIDITY + DAY + 60
            await gw.until(lambda: gw.states() == ["unreported"])
            db = gw.store.db.conn
            assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0  # with its state, or never
            assert db.execute("SELECT suspended_at FROM accounts WHERE name = 'acme'").fetchone()[0] is None
    assert sink.messages == []
    assert len(smsc.received) == 1


async def test_daemon_confirms_an_unreported_sms_to_an_account_that_wants_every_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    monkeypatch.setattr(housekeeping, "STATUS_INTERVAL", 0.05)
    sink_port, skew = free_port(), [0.0]
    async with HeldSMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = unreported_config(tmp_path, smsc.port, sink_port)
        async with running_gateway(cfg, lambda: time.time() + skew[0]) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", dlr_mail="all"))
            sms = mail(f"601123456@{DOMAIN}", "Will it arrive?", Message_ID="<m1@acme.example>")
            await gw.send(sms)
            await smsc.wait_for(1)
            smsc.answer()
            await gw.until(lambda: gw.states() == ["submitted"])
            skew[0] = VALIDITY + DAY + 60
            await gw.until(lambda: gw.states() == ["unreported"])
            await sink.wait(1)
    ((envelope_from, rcpts, raw),) = sink.messages
    notice = email.message_from_bytes(raw, policy=policy.default)
    assert rcpts == [STAFF] and envelope_from != ""  # a notice, not a bounce (those go from <>)
    assert notice.get_content_type() == "text/plain"  # not multipart/report
    assert "the SMSC sent no delivery report" in str(notice["Subject"])
    assert "Undelivered" not in str(notice["Subject"])
    assert notice["In-Reply-To"] == "<m1@acme.example>"
    body = notice.get_content()
    assert "sent; the SMSC sent no delivery report" in body and "delivery is unconfirmed" in body
