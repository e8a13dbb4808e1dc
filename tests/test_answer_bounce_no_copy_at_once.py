"""Bounces of one answer mailed without a fallback address, come at once: the forward of each that
found the answer not handled yet and was written as one handled before said "handled at its first
bounce or refusal: no second copy is sent", a first copy that never went. Each says no copy is
sent. Real mail over SMTP, the built-in simulator over SMPP injecting the phone's answer, a real
SMTP sink for the relay, a second SQLite client holding the write lock so that every bounce is read
before any is written.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.test_answer_bounce_wording import BEFORE, NO_COPY, SENT_NOW, forwards, mid_data
from tests.test_answer_bounced_later import dsn
from tests.test_bounces import parsed
from tests.test_own_numbers import own_config
from tests.test_reply_refused import outbox, sms_and_answer


async def test_bounces_at_once_of_an_answer_mailed_without_a_fallback_all_say_no_copy(tmp_path: Path) -> None:
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
            sender = gw.config.mail.from_address
            sessions = [
                await asyncio.to_thread(
                    mid_data, gw.port, dsn(answer_id, f"<dsn{i}@mx.acme.example>"), sender
                )
                for i in range(3)
            ]
            lock = sqlite3.connect(gw.store.path, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")  # the writes wait; the reads that compose the forwards go on
            try:
                for c in sessions:
                    c.send(b".\r\n")
                await gw.until(lambda: len(gw.store.db._urgent) >= len(sessions))
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            said = [await asyncio.to_thread(c.getreply) for c in sessions]
            for c in sessions:
                c.close()
            await gw.until(lambda: [k for k, *_ in outbox(gw)].count("bounce-forward") == 3)
            kinds = [kind for kind, *_ in outbox(gw)]
            texts = forwards(gw.store.db.conn)
    assert all(code == 250 for code, _ in said), said
    assert "reply-fallback" not in kinds, kinds
    assert all(NO_COPY in t and BEFORE not in t and SENT_NOW not in t for t in texts), texts
