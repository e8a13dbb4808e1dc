"""What the forward of a bounce of a phone's answer mail says of the answer's copy is what the
bounce's write did with it.

Bounces of one answer mail that come at once (each hop's DSN over its own connection) each found the
answer not handled yet when their forwards were written: one copy went, but every forward said "The
answer is sent to the fallback address instead". And an answer mailed before `[replies]
fallback_address` was set gets no copy (its mail names none), while its bounce's forward said it
was sent there. Real mail over SMTP, the built-in simulator over SMPP injecting the phone's answer,
a real SMTP sink for the relay, a second SQLite client holding the write lock so that both bounces
are read before either is written.
"""

from __future__ import annotations

import asyncio
import smtplib
import sqlite3
from pathlib import Path

from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.test_answer_bounced_later import answer_mailed, body, dsn
from tests.test_bounces import delivered, parsed
from tests.test_own_numbers import FALLBACK, own_config
from tests.test_reply_refused import mo_row, outbox, sms_and_answer

SENT_NOW = "The answer is sent to the fallback address instead"
BEFORE = "no second copy is sent"
NO_COPY = "No copy is sent: no fallback address was set when the answer was mailed."


def mid_data(port: int, raw: bytes, rcpt: str) -> smtplib.SMTP:
    """A session with the whole DSN sent but its final dot."""
    c = smtplib.SMTP("127.0.0.1", port, timeout=30)
    c.ehlo("mx.acme.example")
    assert c.mail("")[0] == 250 and c.rcpt(rcpt)[0] == 250
    c.putcmd("data")
    assert c.getreply()[0] == 354
    c.send(raw.replace(b"\r\n.", b"\r\n..").rstrip(b"\r\n") + b"\r\n")  # dot-stuffed (RFC 5321 4.5.2)
    return c


def forwards(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT content FROM outbox WHERE kind = 'bounce-forward' ORDER BY id")
    return [body(raw) for (raw,) in rows]


async def test_bounces_of_one_answer_at_once_say_the_copy_went_once(tmp_path: Path) -> None:
    async with answer_mailed(tmp_path) as (gw, _, answer_id):
        sender = gw.config.mail.from_address
        sessions = [
            await asyncio.to_thread(mid_data, gw.port, dsn(answer_id, f"<dsn{i}@mx.acme.example>"), sender)
            for i in range(3)
        ]
        lock = sqlite3.connect(gw.store.path, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the writes wait; the reads that compose the forwards go on
        try:
            for c in sessions:
                c.send(b".\r\n")
            # Every forward composed, its write waiting for the lock (an SMTP client's writes go first).
            await gw.until(lambda: len(gw.store.db._urgent) >= len(sessions))
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        said = [await asyncio.to_thread(c.getreply) for c in sessions]
        assert all(code == 250 for code, _ in said), said
        for c in sessions:
            c.close()
        await gw.until(lambda: [k for k, *_ in outbox(gw)].count("bounce-forward") == 3)
        kinds = [kind for kind, *_ in outbox(gw)]
        texts = forwards(gw.store.db.conn)
    assert kinds.count("reply-fallback") == 1, kinds
    assert sum(SENT_NOW in t for t in texts) == 1, texts
    assert sum(BEFORE in t for t in texts) == 2, texts


async def test_a_bounce_of_an_answer_mailed_without_a_fallback_says_no_copy_goes(tmp_path: Path) -> None:
    port = free_port()
    cfg = own_config(tmp_path, "smpp", port)
    without = cfg.model_copy(update={"replies": cfg.replies.model_copy(update={"fallback_address": None})})
    async with smtp_sink(port) as relay:
        async with running_gateway(without) as gw:
            await sms_and_answer(gw)
            await gw.until(lambda: outbox(gw) == [("reply", STAFF, "sent")])
            await relay.wait(1)
        answer_id = parsed(relay.messages[0][2])["Message-ID"]
        async with running_gateway(cfg) as gw:  # the fallback address set since
            reply = await delivered(
                gw.port, dsn(answer_id, "<dsn1@mx.acme.example>"), rcpt=cfg.mail.from_address
            )
            assert reply.startswith("250 "), reply
            await gw.until(lambda: [k for k, *_ in outbox(gw)] == ["reply", "bounce-forward"])
            state, note = mo_row(gw)
            [text] = forwards(gw.store.db.conn)
            rcpts = [r for (r,) in gw.store.db.conn.execute("SELECT rcpt FROM outbox ORDER BY id")]
    assert rcpts == [STAFF, FALLBACK]
    assert (state, note.endswith("no other address to send it to ([replies] fallback_address)")) == (
        "failed",
        True,
    ), note
    assert NO_COPY in text and SENT_NOW not in text, text
