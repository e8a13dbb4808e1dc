"""A bounce of a phone's answer mail is matched to that mail by the answer mail's own Message-ID, kept
on its outbox row when it is queued and indexed (migration 72), and only if the bounce's DSN, when it
names its recipients, names the answer mail's.

Before, each bounce quoting an answer-form id (`<….sms-reply@host>`) was looked for in the content of
every answer mail of the last 10 days: a stream of forged bounces cost a full read of them each. And
a DSN that named another recipient (a bounce of a forward of the answer, or a forged one quoting
another user's answer id) failed that user's answer and sent its copy to the fallback address.

The real daemon, the built-in simulator over SMPP injecting the phone's answer, a real SMTP sink for
the relay, the bounces delivered to the gateway's relay port; SQLite's work counted in its steps.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from gateway import answerbounce
from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.test_answer_bounced_later import answer_mailed, answered
from tests.test_bounces import delivered, parsed
from tests.test_own_numbers import FALLBACK, own_config
from tests.test_reply_refused import outbox
from tests.test_store import undo_migration_72, vm_steps


def dsn(answer_id: str, own_id: str, recipient_fields: str) -> bytes:
    """A DSN quoting the answer mail whole, with the per-recipient fields given."""
    return (
        "From: MAILER-DAEMON@mx.acme.example\r\nTo: smsgw@sms.example.com\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: {own_id}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.example\r\n\r\n"
        f"{recipient_fields}Action: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
        "--b\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: +48601222222@sms.example.com\r\nTo: {STAFF}\r\nSubject: Re: Spotkanie\r\n"
        f"Message-ID: {answer_id}\r\n\r\nTak, bede o 10:00\r\n--b--\r\n"
    ).encode()


async def test_a_dsn_naming_another_recipient_leaves_the_answer_alone(tmp_path: Path) -> None:
    async with answer_mailed(tmp_path) as (gw, relay, answer_id):
        sender = gw.config.mail.from_address
        # Another user's address, as a bounce of a forward of the answer, or a forged one, names it.
        other = dsn(answer_id, "<dsn1@mx.acme.example>", "Final-Recipient: rfc822; eve@elsewhere.example\r\n")
        assert (await delivered(gw.port, other, rcpt=sender)).startswith("250 ")
        await gw.until(lambda: "bounce-forward" in [kind for kind, *_ in outbox(gw)])
        assert [(kind, rcpt) for kind, rcpt, _ in outbox(gw)] == [
            ("reply", STAFF),
            ("bounce-forward", FALLBACK),
        ]
        assert outbox(gw)[0][2] == "sent"
        # Its own recipient named (in another case) by the original recipient of an alias: its bounce.
        fields = (
            f"Original-Recipient: rfc822;{STAFF.upper()}\r\nFinal-Recipient: rfc822; box7@mx.acme.example\r\n"
        )
        ours = dsn(answer_id, "<dsn2@mx.acme.example>", fields)
        assert (await delivered(gw.port, ours, rcpt=sender)).startswith("250 ")
        await gw.until(lambda: len(outbox(gw)) == 4)
        kinds = [(kind, state) for kind, _, state in outbox(gw)]
        assert kinds[0] == ("reply", "failed") and "reply-fallback" in [k for k, _ in kinds[2:]], kinds
        # A bounce with no DSN part (qmail's) is matched by the id alone, as before.
        plain = (
            "From: MAILER-DAEMON@mx.acme.example\r\nTo: smsgw@sms.example.com\r\n"
            "Subject: failure notice\r\nMessage-ID: <dsn3@mx.acme.example>\r\n\r\n"
            f"Hi. This is the qmail-send program at mx.acme.example.\r\n<{STAFF}>:\r\n"
            "Sorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
            f"--- Below this line is a copy of the message.\r\n\r\nMessage-ID: {answer_id}\r\n\r\nTak\r\n"
        ).encode()
        assert (await delivered(gw.port, plain, rcpt=sender)).startswith("250 ")
        await gw.until(lambda: len(outbox(gw)) == 5)
        await relay.wait(5)
        forwards = [parsed(raw) for *_, raw in relay.messages[1:] if parsed(raw)["Subject"][:4] != "SMS "]
    texts = [str(m.get_body(("plain",)).get_content()) for m in forwards]
    assert len(texts) == 3, texts
    head = f"A bounce of the mail with the answer from +48******222 to {STAFF} (MO 1)"
    assert [t.startswith(head) for t in texts] == [False, True, True], texts


async def test_a_forged_bounce_costs_the_same_however_many_answer_mails(tmp_path: Path) -> None:
    async with answer_mailed(tmp_path) as (gw, _, answer_id):
        conn = gw.store.db.conn
        cols = [
            r[1] for r in conn.execute("PRAGMA table_info(outbox)") if r[1] not in ("id", "header_message_id")
        ]

        def answers(count: int) -> None:
            """`count` more answer mails sent just now, each a copy of the first."""
            with conn:
                conn.execute(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                    f" INSERT INTO outbox ({', '.join(cols)}) SELECT {', '.join(cols)} FROM outbox, n"
                    " WHERE outbox.id = 1",
                    (count,),
                )

        # Two answer-form ids quoted, neither an answer mail's.
        quoted = "<1.2.sms-reply@sms.example.com>\r\nMessage-ID: <3.4.sms-reply@sms.example.com>"
        forged = dsn(quoted, "<f@x.example>", f"Final-Recipient: rfc822; {STAFF}\r\n")

        def steps() -> int:
            counted, found = vm_steps(conn, lambda: answerbounce.find(gw.store, forged))
            assert found is None
            return counted

        answers(1_000)
        fewer = steps()
        answers(4_000)
        assert steps() <= fewer * 1.1 + 10, fewer
        # The real one is still found, by its id.
        real = dsn(answer_id, "<d@x.example>", f"Final-Recipient: rfc822; {STAFF}\r\n")
        found = answerbounce.find(gw.store, real, client_ip="127.0.0.1")  # from acme's mail server
        assert found is not None and found.mail_id == 1
        (kept,) = conn.execute("SELECT header_message_id FROM outbox WHERE id = 1").fetchone()
        assert kept == answer_id  # written with the row, as the relay got it


async def test_answer_mails_queued_before_the_upgrade_are_found_by_their_id(tmp_path: Path) -> None:
    port = free_port()
    cfg = own_config(tmp_path, "smpp", port)
    async with smtp_sink(port) as relay:
        async with running_gateway(cfg) as gw:
            answer_id = await answered(gw, relay)
            path = gw.store.db.path
        # The database as the version before left it: no column, no index, version 71.
        with closing(sqlite3.connect(path)) as conn, conn:
            undo_migration_72(conn)  # and the later ones
            conn.execute("UPDATE schema_version SET version = 71")
        async with running_gateway(cfg) as gw:
            (kept,) = gw.store.db.conn.execute("SELECT header_message_id FROM outbox WHERE id = 1").fetchone()
            assert kept == answer_id
            bounce = dsn(answer_id, "<dsn1@mx.acme.example>", f"Final-Recipient: rfc822; {STAFF}\r\n")
            assert (await delivered(gw.port, bounce, rcpt=gw.config.mail.from_address)).startswith("250 ")
            await gw.until(lambda: len(outbox(gw)) == 3)
            assert outbox(gw)[0] == ("reply", STAFF, "failed")
            assert ("reply-fallback", FALLBACK) in [(kind, rcpt) for kind, rcpt, _ in outbox(gw)]
