"""A phone alternating STOP and START is held to the hourly limit of answer mails a phone.

A STOP from a phone on the opt-out list already was counted, but one after a START lists the phone
anew, and each such STOP went past the limit uncounted: 80 SMS STOP, START, STOP, ... ten seconds
apart gave the user 70 mails within 13 minutes, where the limit is 30 an hour. Only the phone's first
STOP of the hour goes past it now; each later one counts, and is kept past the limit like any answer
(its opt-out done all the same, and said in its note). The real daemon, its simulator over SMPP as the
phone, a real SMTP sink as the relay, the daemon's clock injected.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import two_way_config

T0 = 1_800_000_000.0


async def test_stop_and_start_in_turn_are_held_to_the_hourly_limit(tmp_path: Path) -> None:
    relay = free_port()
    now = [T0]
    config = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(config, lambda: now[0]) as gw:
        core, control = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Promocja", subject="Oferta"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        conn = gw.store.db.conn
        for i in range(80):
            now[0] += 10
            text = "STOP" if i % 2 == 0 else "START"
            command = {"op": "mo", "source": "+48601123456", "destination": "+48100200300", "text": text}
            assert (await send_command("127.0.0.1", control, command))["ok"]
            await gw.until(
                lambda i=i: conn.execute("SELECT COUNT(*) FROM mo WHERE state <> 'new'").fetchone()[0] > i
            )
        states = dict(conn.execute("SELECT state, COUNT(*) FROM mo GROUP BY state").fetchall())
        # The first STOP past the limit, then 30 answers mailed (15 STARTs, 15 STOPs), the rest kept.
        assert states == {"optout": 16, "mailed": 15, "throttled": 49}, states
        await sink.wait(31)
        await asyncio.sleep(0.5)  # anything more queued would have gone by now
        assert len(sink.messages) == 31
        kept = conn.execute("SELECT text, note FROM mo WHERE state = 'throttled' ORDER BY id").fetchall()
    stops = [note for text, note in kept if text == "STOP"]
    assert len(stops) == 24
    assert all("answered with an opt-out word: further SMS to it are refused" in n for n in stops), stops


async def test_a_stop_never_mailed_leaves_the_next_one_first_of_the_hour(tmp_path: Path) -> None:
    """A STOP to a number no conversation, fallback or inbound address takes is listed but mailed to
    nobody. Counted as the hour's first STOP all the same, the phone's STOP to its conversation a
    minute later, once the limit was used up, was kept (its user told in an hour) and not mailed."""
    relay = free_port()
    now = [T0]
    config = two_way_config(tmp_path, "smpp", relay_port=relay)
    config = config.model_copy(
        update={"replies": config.replies.model_copy(update={"mails_per_phone_per_hour": 3})}
    )
    async with smtp_sink(relay) as sink, running_gateway(config, lambda: now[0]) as gw:
        core, control = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        conn = gw.store.db.conn
        # An inbound address elsewhere: the hourly limit counts, but no one takes a STOP to +48100999999.
        await gw.store.write(
            lambda: gw.store.accounts.update_account("other", inbound_address="in@other.example")
        )

        async def answer(text: str, to: str = "+48100200300") -> None:
            now[0] += 10
            handled = conn.execute("SELECT COUNT(*) FROM mo WHERE state <> 'new'").fetchone()[0]
            command = {"op": "mo", "source": "+48601123456", "destination": to, "text": text}
            assert (await send_command("127.0.0.1", control, command))["ok"]
            await gw.until(
                lambda: conn.execute("SELECT COUNT(*) FROM mo WHERE state <> 'new'").fetchone()[0] > handled
            )

        await answer("STOP", "+48100999999")
        await answer("START", "+48100999999")
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Promocja", subject="Oferta"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        for _ in range(3):
            await answer("Dziekuje")
        await sink.wait(3)
        await answer("STOP")
        states = conn.execute("SELECT text, state FROM mo ORDER BY id").fetchall()
        assert states[0] == ("STOP", "optout") and states[-1] == ("STOP", "optout"), states
        await sink.wait(4)  # the user hears of the STOP at once
