"""One mail followed through the daemon's log by its ids; refusals logged for whom they were made.

A real SMTP client talks to the running daemon, a fake SMPP SMSC over TCP delivers, reports a
failure (numbers ending 13) or refuses at submit (ending 0000), a real SMTP sink takes the bounces,
and the log is what structlog writes (`capture_logs`). In earlier versions the id a client was
given (`queued as 247`) led to no SMS's line, refused senders were lost or counted on another
sender's line, mails refused at DATA left no line, and MO lines carried phone numbers.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import structlog

from gateway.config import parse_config
from smsc.logthrottle import LogThrottle
from tests.conftest import (
    DOMAIN,
    STAFF,
    config_text,
    free_port,
    mail,
    make_config,
    running_gateway,
    smtp_sink,
)
from tests.fakes.smsc import FakeSMSC
from tests.test_session_limits import blocking
from tests.test_smtp_abuse import refused_rcpts

FINAL = ("delivered", "failed", "expired", "cancelled", "unreported")


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


async def test_a_mail_is_followed_from_its_acceptance_to_each_sms_and_the_bounces_about_it(
    tmp_path: Path,
) -> None:
    relay = free_port()
    with structlog.testing.capture_logs() as logs:
        async with (
            FakeSMSC(fail_suffixes=["13"], reject_suffixes=["0000"]) as smsc,
            smtp_sink(relay) as sink,
            running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=relay)) as gw,
        ):
            # Messages before the mail's: its email id is then some other mail's message id.
            before = [to("601100001"), to("601100002"), to("601100003")]
            assert (await gw.send(mail(before, "Before"), before)).error is None
            rcpts = [to("601123456"), to("601123413"), to("601120000")]
            assert (await gw.send(mail(rcpts, "Trace me"), rcpts)).error is None
            await gw.until(lambda: all(s in FINAL for s in gw.states()) and len(gw.states()) == 6)
            await sink.wait(1)  # the one bounce of the mail's two failures
            await gw.until(lambda: len([e for e in logs if e["event"] == "mail.sent"]) == 1)
            email = gw.store.db.conn.execute("SELECT MAX(id) FROM emails").fetchone()[0]
            ids = [
                r[0] for r in gw.store.db.conn.execute("SELECT id FROM messages WHERE email_id = ?", (email,))
            ]
    (accepted,) = [e for e in logs if e["event"] == "smtp.accepted" and e["email"] == email]
    assert accepted["messages"] == ids  # the line that links the client's id to its SMS
    # The client's id is another mail's message id: only the field names tell them apart.
    assert email not in ids and email in [e["message"] for e in logs if e["event"] == "message.state"]
    final = {e["message"]: e for e in logs if e["event"] == "message.state" and e["state"] in FINAL}
    assert {m: final[m]["state"] for m in ids} == {ids[0]: "delivered", ids[1]: "failed", ids[2]: "failed"}
    # The SMSC's reason is at INFO, on the message's line: it was in a DEBUG receipt line alone.
    assert final[ids[1]]["log_level"] == "info" and final[ids[1]]["reason"], final[ids[1]]
    assert final[ids[2]]["reason"], final[ids[2]]
    (refused,) = [e for e in logs if e["event"] == "mt.failed"]
    assert refused["message"] == ids[2]
    (sent,) = [e for e in logs if e["event"] == "mail.sent"]
    assert sorted(sent["messages"]) == ids[1:] and sent["email"] == email  # each SMS it is about


def strangers_config(tmp_path: Path) -> Any:
    text = config_text(tmp_path, smsc_port=1).replace(
        'relay_networks = ["127.0.0.0/8"]', 'relay_networks = ["127.0.0.1/32"]'
    )
    return parse_config(text, source="test", base_dir=tmp_path)


async def test_each_refused_sender_is_named_with_its_own_count_within_seconds(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(strangers_config(tmp_path)) as gw:
            start = time.monotonic()
            for _ in range(5):  # five sessions of one stranger within the second, then another's
                await blocking(lambda: refused_rcpts(gw.port, "127.0.0.2", "stranger@a.example", 1))
            await blocking(lambda: refused_rcpts(gw.port, "127.0.0.2", "mallory@b.example", 1))
            assert time.monotonic() - start < 1.0, "too slow a machine to test the second"

            def lines() -> list[dict[str, Any]]:
                return [e for e in logs if e["event"] == "smtp.sender_refused"]

            # Said while the daemon runs, not only by the summary its stop writes.
            await gw.until(
                lambda: sum(e["suppressed"] + (not e.get("summary")) for e in lines()) == 6, timeout=5
            )
            said = lines()
    by_sender = {
        s: [e for e in said if e["sender"] == s] for s in ("stranger@a.example", "mallory@b.example")
    }
    assert [e["suppressed"] for e in by_sender["mallory@b.example"]] == [0]
    assert [e["suppressed"] for e in by_sender["stranger@a.example"]] == [0, 4]
    assert by_sender["stranger@a.example"][1]["summary"] is True


async def test_mails_refused_at_data_are_logged_without_their_text_or_number(tmp_path: Path) -> None:
    async with FakeSMSC() as smsc:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
                for i in range(4):
                    res = await gw.send(
                        mail(to("601123456"), "Same secret text", Message_ID=f"<s{i}@a.example>")
                    )
                assert res.error is not None and getattr(res.error, "smtp_code", None) == 550
    (line,) = [e for e in logs if e["event"] == "smtp.data_refused"]
    assert line["sender"] == STAFF and line["reply"].startswith("550 5.7.1 More than 3 identical SMS")
    said = json.dumps(line)
    assert "601123456" not in said and "secret" not in said, said


async def test_an_mo_line_names_the_mo_not_the_phones(tmp_path: Path) -> None:
    async with FakeSMSC() as smsc:
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
                await smsc.wait_until(lambda: bool(smsc.sessions))
                await asyncio.sleep(0.2)  # bound: the fake has a session, the gateway its bind answer
                await smsc.inject_mo("+48601987654", "+48100200300", "Hello there")
                await gw.until(lambda: any(e["event"] == "mo.recorded" for e in logs))
                mo = gw.store.db.conn.execute("SELECT MAX(id) FROM mo").fetchone()[0]
    (line,) = [e for e in logs if e["event"] == "mo.recorded"]
    assert line["mo"] == mo
    said = json.dumps(line)
    assert "601987654" not in said and "100200300" not in said, said


async def test_a_flood_of_made_up_senders_is_counted_together_past_the_cap() -> None:
    # Keyed per sender, a stranger making up a sender per session would be a line each.
    now = [0.0]
    with structlog.testing.capture_logs() as logs:
        throttle = LogThrottle(
            structlog.get_logger("t"), interval=0.2, clock=lambda: now[0], when_quiet=True, max_kinds=2
        )
        for n in range(5):
            throttle.info("smtp.sender_refused", kind=f"sender_refused:s{n}", sender=f"s{n}@x.example")
        assert [e["sender"] for e in logs] == ["s0@x.example", "s1@x.example"]
        now[0] = 0.5
        await asyncio.sleep(0.4)  # the quiet timer, set for the interval's end (0.2 s)
        throttle.info("smtp.sender_refused", kind="sender_refused:s9", sender="s9@x.example")
    assert logs[2:-1] == [
        {
            "event": "smtp.sender_refused",
            "suppressed": 3,
            "summary": True,
            "others": True,
            "log_level": "info",
        }
    ]
    assert logs[-1]["sender"] == "s9@x.example"  # the kinds whose second passed are forgotten
