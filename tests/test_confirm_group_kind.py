"""A confirmation naming several numbers has a kind of its own, not a bounce's (migration 68).

"SMS delivered to N numbers" (`gateway.notifygroup`) was stored with the kind of a grouped bounce,
`dsn-group`: `smsgw queue show`, `smsgw outbox list`, the panel's message page and the log's
`mail.sent` called a confirmation a bounce. It is `notify-group` now, and migration 68 moves the
confirmations queued or sent before to it, told from bounces by what the row holds.

Real peers: a real SMTP client, the daemon in this process, the simulator over SMPP, the CLI as a
process, a real SQLite file (nothing listens at the relay, so the confirmation waits in the outbox).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.bouncegroup import group_dsn
from gateway.notifygroup import group_notice, group_success_dsn
from gateway.smtp.accept import accept
from gateway.store.db import Store
from gateway.store.erasedmail import ERASED_MAIL
from gateway.store.outboxgroups import CONFIRM_GROUP_KIND, GROUP_KIND
from tests.conftest import DOMAIN, STAFF
from tests.test_bounce_group_record import sections_of
from tests.test_bounce_group_retry import message_id
from tests.test_confirm_group import DELIVERED, NOTICES, confirmed_unsent
from tests.test_process import smsgw
from tests.test_store import Clock, acceptance, undo_migration_68


async def test_a_confirmation_of_several_numbers_is_listed_as_one_not_as_a_bounce(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    to = DELIVERED[:2]
    async with confirmed_unsent(path, to) as gw:
        conn = gw.store.db.conn
        rows = f"SELECT kind FROM outbox WHERE {NOTICES}"
        await gw.until(lambda: conn.execute(rows).fetchall() == [(CONFIRM_GROUP_KIND,)])
        ids = [message_id(conn, address) for address in to]
        listed = await asyncio.to_thread(smsgw, path, "outbox", "list")
        shown = await asyncio.to_thread(smsgw, path, "queue", "show", str(ids[0]))
    assert listed.returncode == 0 and shown.returncode == 0, (listed.stderr, shown.stderr)
    [line] = [line for line in listed.stdout.splitlines() if STAFF in line]
    assert f" {CONFIRM_GROUP_KIND} to {STAFF}" in line and GROUP_KIND not in listed.stdout, listed.stdout
    sections = sections_of(shown.stdout)  # listed under each SMS it names, as a confirmation
    assert all(sections[i] == [f"mail-sent: {CONFIRM_GROUP_KIND} to {STAFF}"] for i in ids), sections


async def test_migration_68_moves_the_confirmations_to_their_kind_and_keeps_the_bounces(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite"
    s = Store.open(path, clock=Clock())
    numbers = ["+48601123400", "+48601123401", "+48601123402", "+48601123403"]
    ids = (await accept(s, acceptance(numbers))).message_ids
    conn = s.db.conn
    with s.db.transaction():  # two delivered, two failed; the failed SMS's text quotes a receipt's words
        conn.executemany(
            "UPDATE messages SET state = ?, text = ? WHERE id = ?",
            [("delivered", "x", ids[0]), ("delivered", "x", ids[1])]
            + [("failed", "Action: delivered", i) for i in ids[2:]],
        )
    infos = [s.admin.message_info(i) for i in ids]
    where = dict(sender="smsgw@gw.example", rcpt=STAFF, domain=DOMAIN)
    notice = group_notice(infos[:2], now=0.0, **where)
    receipt = group_success_dsn(infos[:2], reporting_mta="gw.example", now=0.0, **where)
    bounce = group_dsn(infos[2:], reporting_mta="gw.example", now=0.0, **where)
    assert b"Action: delivered" in bounce  # the SMS text it gives back
    delivered, failed = f"{ids[0]},{ids[1]}", f"{ids[2]},{ids[3]}"
    undo_migration_68(conn)
    conn.execute("UPDATE schema_version SET version = 67")
    conn.executemany(
        "INSERT INTO outbox (kind, mail_from, rcpt, content, next_attempt_at, created_at, email_ref, bounced)"
        " VALUES (?, ?, ?, ?, 0, 0, 1, ?)",
        [
            ("dsn-group", "smsgw@gw.example", STAFF, notice, delivered),  # a plain notice
            ("dsn-group", "", STAFF, receipt, delivered),  # a NOTIFY=SUCCESS receipt
            ("dsn-group", "", STAFF, bounce, failed),
            ("dsn-group", "", STAFF, ERASED_MAIL, delivered),  # erased at a phone's request
            ("dsn-group", "", STAFF, ERASED_MAIL, failed),
            ("dsn", "", STAFF, receipt, str(ids[0])),  # of one SMS: as it was
        ],
    )
    s.close()
    s = Store.open(path, clock=Clock())
    kinds = [r[0] for r in s.db.conn.execute("SELECT kind FROM outbox ORDER BY id")]
    s.close()
    group, confirm = GROUP_KIND, CONFIRM_GROUP_KIND
    assert kinds == [confirm, confirm, group, confirm, group, "dsn"], kinds
