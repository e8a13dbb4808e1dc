"""`smsgw mo list` (and the panel) on an answer whose mail the outbox gave up as most likely arrived,
and on one queued behind another mail to its address that is being sent.

The relay read the whole answer mail and closed without a reply, three times: the outbox gave it up
as most likely delivered, and the list said a plain `mailed`, nothing to tell it from a mail the
relay took. An answer queued behind another mail to its address whose dot the relay holds
unanswered said "queued, not tried yet", as if nothing held it. Real peers: SMTP into the daemon,
the built-in simulator over SMPP, the outbox against a real SMTP relay on its own thread, `smsgw`
as its own process on the same SQLite file.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from gateway import outboxworker
from smsc.simulator.control import send_command
from tests.conftest import STAFF, running_gateway
from tests.test_mailer import Relay, relay_running
from tests.test_mo_list_outbox import smsgw
from tests.test_relay_slow_dot import RETRY, DropsAfterDot, ScaledClient
from tests.test_reply_refused import sms_and_answer
from tests.test_two_way import two_way_config


def replies(gw: object) -> list[tuple[int, str]]:
    conn = gw.store.db.conn  # type: ignore[attr-defined]
    return [tuple(r) for r in conn.execute("SELECT id, state FROM outbox WHERE kind = 'reply' ORDER BY id")]


async def test_an_answer_given_up_as_most_likely_arrived_is_said_unsure_with_the_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aiosmtplib, "SMTP", ScaledClient)
    monkeypatch.setattr(outboxworker, "mail_retry_delay", lambda attempts: RETRY)
    with relay_running(DropsAfterDot(drops=None)) as port:
        async with running_gateway(two_way_config(tmp_path, "smpp", relay_port=port)) as gw:
            await sms_and_answer(gw)
            await gw.until(lambda: [s for _, s in replies(gw)] == ["failed"], timeout=30)
            [(mail_id, _)] = replies(gw)
            [line] = (await asyncio.to_thread(smsgw, tmp_path, "mo", "list")).splitlines()[-1:]
    assert line.endswith(
        f" mailed     → {STAFF}  (its mail to {STAFF} may not have arrived: the relay never answered;"
        f" `smsgw outbox retry {mail_id}`)"
    ), line


class HeldDot(Relay):
    """Holds the answer to the final dot until `held` is set (a slow content filter)."""

    def __init__(self) -> None:
        super().__init__()
        self.held = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.to_thread(self.held.wait, 60)
        return await super().handle_DATA(server, session, envelope)


async def test_an_answer_queued_behind_a_send_to_its_address_says_so(tmp_path: Path) -> None:
    relay = HeldDot()
    with relay_running(relay) as port:
        async with running_gateway(two_way_config(tmp_path, "smpp", relay_port=port)) as gw:
            await sms_and_answer(gw, "Pierwsza")
            await gw.until(lambda: [s for _, s in replies(gw)] == ["active"])
            command = {"op": "mo", "reply_to_last": True, "text": "Druga"}
            assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
            await gw.until(lambda: [s for _, s in replies(gw)] == ["active", "queued"])
            lines = (await asyncio.to_thread(smsgw, tmp_path, "mo", "list")).splitlines()
            relay.held.set()  # the dot answered: the daemon stops without cutting the send off
    assert lines[-2].endswith(
        f" queued     → {STAFF}  (its mail to {STAFF} waits behind a send to that address in progress)"
    ), lines
    assert lines[-1].endswith(f"(its mail to {STAFF} is being handed to the mail relay)"), lines
