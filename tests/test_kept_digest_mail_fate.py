"""What became of a mail of kept answers is told of every answer it carried, not of its first alone.

A phone's answers kept past the hourly limit go out in one mail, which names its first answer
(`outbox.mo_ref`). `smsgw mo list` and the Answers page read an answer's mail by that name: while
the relay deferred the mail (450, for days), the first answer read "queued for anna@…" with the
relay's words and the others "mailed to anna@…"; given up as most likely arrived, only the first
said so. Each answer the mail carried now reads its mail. Through the daemon, its built-in SMSC and
a real relay that greylists the user, on an injected clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.conversations.cli import mail_waiting
from gateway.conversations.queries import account_answers
from gateway.conversations.repo import ConversationsRepo
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_kept_answers import T0, answer, flood_config, states
from tests.test_reply_refused import RefusingRelay


async def test_a_deferred_mail_of_kept_answers_is_queued_for_each_answer_it_carries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    port = free_port()
    relay = RefusingRelay()
    async with (
        smtp_sink(port, relay),
        running_gateway(flood_config(tmp_path, port, "mails_per_phone_per_hour = 1"), lambda: now[0]) as gw,
    ):
        conn = gw.store.db.conn
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?"))).error is None
        await gw.until(lambda: len(gw.daemon.simulator.core.records) == 1)
        await answer(gw, "ok")
        await relay.wait(1)
        relay.gone.add(STAFF.casefold())
        relay.later = True  # greylisted from now on: the mail of kept answers stays queued
        for n in range(3):
            now[0] += 60
            await answer(gw, f"answer {n}")
        now[0] += 3601
        await gw.until(lambda: relay.refused != [])
        await gw.until(
            lambda: (
                conn.execute(
                    "SELECT state, last_error IS NOT NULL FROM outbox WHERE kind = 'reply-kept'"
                ).fetchall()
                == [("queued", 1)]
            )
        )
        assert states(gw) == ["mailed"] * 4
        repo = ConversationsRepo(gw.store.db, gw.store.clock)
        listed = sorted(repo.list_mo(since=None, numbers=None, limit=10), key=lambda r: r["id"])
        [acme] = [a for a in gw.store.accounts.list_accounts() if a.name == "acme"]
        page = sorted(account_answers(conn, acme.id, 10), key=lambda r: r["id"])
    for rows in (listed, page):
        assert [r["mail_state"] for r in rows] == ["sent", "queued", "queued", "queued"], rows
        said = [mail_waiting(r) or "" for r in rows[1:]]
        assert all(f"its mail to {STAFF} is not taken" in s and "450 4.2.0 Greylisted" in s for s in said), (
            said
        )
