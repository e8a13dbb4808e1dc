"""The premium SMS mailed to the fallback address (unknown password) is Auto-Submitted; the client's
vote mail is not (RFC 3834).

The client's mail leaves the header out on purpose: its auto-responder may send the free answer
(R-4.5). The fallback's copy has no answer address, so that reason does not hold for it, and the
operator's vacation reply went to the gateway's own address. Against real peers: the daemon with its
built-in SMSC over SMPP, the CLI adding the service, mail over SMTP to and from a real sink.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.cli.main import main
from smsc.simulator.control import send_command
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_premium_loop import CLIENT, PHONE, premium_config, reply_to, smtp
from tests.test_two_way import parsed


async def test_only_the_fallback_copy_of_a_premium_sms_is_auto_submitted(tmp_path: Path) -> None:
    relay = free_port()
    path, cfg = premium_config(tmp_path, "smpp", relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:  # type: ignore[arg-type]
        port = gw.daemon.simulator.control_port
        unknown = {"op": "mo", "source": PHONE, "destination": "7355", "text": "KP999 nieznane hasło żółw"}
        assert (await send_command("127.0.0.1", port, unknown))["ok"]
        await sink.wait(1)
        _, rcpts, raw = sink.messages[0]
        fallback = parsed(raw)
        assert rcpts == ["ops@example.com"] and fallback["Reply-To"] is None
        assert fallback.get_all("Auto-Submitted") == ["auto-generated"]
        # A client's vote mail, with its answer address: no Auto-Submitted, as before.
        added = ["-c", str(path), "premium", "add", "kp123", "--account", "acme", "--email", CLIENT]
        assert await asyncio.to_thread(main, [*added, "--number", "7355"]) == 0
        gw.store.outbox.on_queued()
        await sink.wait(2)
        assert (await smtp(gw.port, *reply_to(parsed(sink.messages[1][2]), "yes"))).error is None
        vote = {"op": "mo", "source": PHONE, "destination": "7355", "text": "KP123 vote A"}
        assert (await send_command("127.0.0.1", port, vote))["ok"]
        await sink.wait(3)
        _, rcpts, raw = sink.messages[2]
        mailed = parsed(raw)
        assert rcpts == [CLIENT] and mailed["Subject"] == "KP123 · 7355 · +48 601 123 456"
        assert mailed["Reply-To"] is not None and mailed["Auto-Submitted"] is None
