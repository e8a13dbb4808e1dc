"""A phone's STOP said again and again is held to the hourly limit of answer mails a phone.

Opt-out words skipped the limit altogether: 45 STOPs ("STOP", "stop.", "Stop!", …) within 7.5 minutes
gave the user 45 mails where the limit is 30 an hour, and none of them counted. Only the first STOP,
which lists the phone, tells the user something new; it is still mailed past the limit. Every later
one, from a phone on the list already, is counted, kept and mailed as any answer. The real daemon, its
simulator over SMPP as the phone, a real SMTP sink as the relay, the daemon's clock injected.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import parsed, two_way_config

WORDS = ["STOP", "stop.", "Stop!", "STOP \U0001f64f", "\u201eSTOP\u201d"]
T0 = 1_800_000_000.0


async def test_repeated_stops_are_held_to_the_hourly_limit(tmp_path: Path) -> None:
    relay = free_port()
    now = [T0]
    config = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(config, lambda: now[0]) as gw:
        core, control = gw.daemon.simulator.core, gw.daemon.simulator.control_port
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Promocja", subject="Oferta"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        conn = gw.store.db.conn
        for i in range(45):
            now[0] += 10
            command = {"op": "mo", "reply_to_last": True, "text": WORDS[i % len(WORDS)]}
            assert (await send_command("127.0.0.1", control, command))["ok"]
            await gw.until(
                lambda i=i: conn.execute("SELECT COUNT(*) FROM mo WHERE state <> 'new'").fetchone()[0] > i
            )
        states = dict(conn.execute("SELECT state, COUNT(*) FROM mo GROUP BY state").fetchall())
        assert states == {"optout": 1, "mailed": 30, "throttled": 14}, states
        await sink.wait(31)
        await asyncio.sleep(0.5)  # anything more queued would have gone by now
        assert len(sink.messages) == 31
        first, second = (str(parsed(raw).get_body(("plain",)).get_content()) for *_, raw in sink.messages[:2])
        notes = [r[0] for r in conn.execute("SELECT note FROM mo WHERE state = 'mailed' ORDER BY id")]
    assert "answered with an opt-out word: further SMS to it are refused" in " ".join(first.split())
    assert "is on the opt-out list already: SMS to it are refused" in " ".join(second.split())
    assert all("is on the opt-out list already" in n for n in notes), notes
