"""The mail the gateway writes is dated by the daemon's clock, as the rest of its record is: over real
SMTP against the daemon with its built-in SMSC, a real SMTP sink catching what it sends.

Defect: every notice, bounce and billing mail (`notify.stamp`) and the answers and premium SMS it
forwards read the host's clock for their Date header, whatever clock the daemon was given: a test
that set the clock could not see their date, and a mail's Date stood apart from its own record.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from pathlib import Path

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import parsed, two_way_config

# 2027-01-15 08:00:00 UTC: far from the host's time, whenever the test runs.
NOW = 1_800_000_000.0


def dated(raw: bytes) -> float:
    return parsedate_to_datetime(parsed(raw)["Date"]).timestamp()


async def test_a_bounce_carries_the_daemons_clock(tmp_path: Path) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: NOW) as gw:
        # The simulator reports a number ending in 13 as not delivered: its sender gets a bounce.
        assert (await gw.send(mail(f"601123413@{DOMAIN}", body="ping", subject="Lost"))).error is None
        await sink.wait(1)
    bounce = parsed(sink.messages[0][2])
    assert bounce.get_content_type() == "multipart/report", bounce["Subject"]
    assert dated(sink.messages[0][2]) == NOW, bounce["Date"]


async def test_a_forwarded_answer_carries_the_daemons_clock(tmp_path: Path) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: NOW) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="ping", subject="Spotkanie"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        command = {"op": "mo", "reply_to_last": True, "text": "pong"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await sink.wait(1)
    answer = parsed(sink.messages[0][2])
    assert ".sms-reply@" in answer["Message-ID"] and answer.get_content().strip().startswith("pong")
    assert dated(sink.messages[0][2]) == NOW, answer["Date"]
