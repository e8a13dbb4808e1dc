"""A STOP ends at once the SMS still waiting for its phone, and a STOP or START to a premium number is
told in the mail it becomes (R-2.4, R-4).

Against real peers: the daemon with its built-in SMSC over TCP, mail over SMTP to and from a real
sink, the SQLite file; the clock is injected for quiet hours.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.store.settling import OPTED_OUT
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_policy import Clock
from tests.test_premium_loop import premium_config
from tests.test_two_way import PHONE, parsed, two_way_config

LONG = "Newsletter: " + "nowe ceny w sklepie od poniedzialku, zapraszamy " * 5  # two parts


def _noted(msg: EmailMessage) -> str:
    """The mail's text with its lines joined: a note may be folded over lines."""
    return " ".join(msg.get_content().split())


def _waiting(gw: Any) -> list[tuple[int, str, str]]:
    """(message id, part state, message state) of the SMS to the phone, by part."""
    return gw.store.db.conn.execute(
        "SELECT m.id, p.state, m.state FROM parts p JOIN messages m ON m.id = p.message_id"
        " WHERE p.destination = ? ORDER BY p.id",
        (PHONE,),
    ).fetchall()


async def test_a_stop_ends_the_sms_held_for_quiet_hours_at_once_and_their_sender_hears_now(
    tmp_path: Path,
) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    tz = ZoneInfo("Europe/Warsaw")
    clock = Clock(datetime.now(tz).replace(hour=22, minute=0, second=0, microsecond=0))
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock) as gw:
        core = gw.daemon.simulator.core
        await gw.store.write(
            lambda: gw.store.accounts.update_account("acme", quiet_start="21:00", quiet_end="08:00")
        )
        assert (await gw.send(mail(f"601123456@{DOMAIN}", "Nowa oferta", subject="Oferta"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        assert (await gw.send(mail(f"601123456@{DOMAIN}", LONG, Precedence="bulk"))).error is None
        await gw.until(lambda: len(_waiting(gw)) == 3)
        held = _waiting(gw)[1][0]
        assert [s for m, s, _ in _waiting(gw) if m == held] == ["queued"] * 2  # held until 08:00
        await sink.wait(1)  # the sender is told it is held
        before = len(sink.messages)
        sent = await send_command(
            "127.0.0.1", gw.daemon.simulator.control_port, {"op": "mo", "reply_to_last": True, "text": "STOP"}
        )
        assert sent["ok"] and sent["source"] == PHONE
        await sink.wait(before + 2)  # the STOP to the staff member and the bounce, at 22:00
        got = [(rcpts, parsed(raw)) for _, rcpts, raw in sink.messages[before:]]
        [stop] = [m for _r, m in got if "Undelivered" not in str(m["Subject"])]
        [dsn] = [m for _r, m in got if "Undelivered" in str(m["Subject"])]
        assert [r for r, m in got if m is dsn] == [[STAFF]]
        told = dsn.get_payload(0)
        assert isinstance(told, EmailMessage) and OPTED_OUT in _noted(told)
        noted = _noted(stop)
        assert "answered with an opt-out word: further SMS to it are refused" in noted
        assert "1 SMS still waiting to go to it ended unsent (opted out), their senders told" in noted
        # No part of it waits any more; the message failed with the claim's reason.
        states = [(s, ms) for m, s, ms in _waiting(gw) if m == held]
        assert all(ms == "failed" for _s, ms in states) and "queued" not in [s for s, _ in states]
        (reason,) = gw.store.db.conn.execute("SELECT reason FROM messages WHERE id = ?", (held,)).fetchone()
        assert reason == f"both parts: {OPTED_OUT}"  # ended together, as the claim ends them
        assert [s for m, s, _ in _waiting(gw) if m == held] == ["failed"] * 2
        # The window opens: nothing goes, and no second bounce.
        clock.t += 10 * 3600 + 60
        gw.daemon.dispatcher.wake()
        await asyncio.sleep(1.5)
        assert len(core.records) == 1
        dsns = gw.store.db.conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'dsn' AND message_ref = ?", (held,)
        )
        assert dsns.fetchone()[0] == 1


async def _premium_mo(gw: Any, sink: Any, text: str) -> str:
    """A phone's SMS to the premium number 7355 without a password: the fallback mail it becomes,
    its text with its lines joined."""
    before = len(sink.messages)
    mo = {"op": "mo", "source": PHONE, "destination": "7355", "text": text}
    assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, mo))["ok"]
    await sink.wait(before + 1)
    _, rcpts, raw = sink.messages[before]
    assert rcpts == ["ops@example.com"]
    told = _noted(parsed(raw))
    assert "Not forwarded to a client:" in told
    return told


async def test_a_stop_to_a_premium_number_is_told_in_its_fallback_mail_and_mo_list(tmp_path: Path) -> None:
    relay = free_port()
    _path, cfg = premium_config(tmp_path, "smpp", relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:  # type: ignore[arg-type]
        stopped = await _premium_mo(gw, sink, "STOP")
        assert gw.store.policy.is_opted_out(PHONE)
        assert "+48 601 123 456 answered with an opt-out word: it is on the opt-out list now" in stopped
        (note,) = gw.store.db.conn.execute("SELECT note FROM mo ORDER BY id DESC").fetchone()
        assert "opt-out list now" in note  # `smsgw mo list` tells it too


async def test_a_start_to_a_premium_number_is_told_in_its_fallback_mail(tmp_path: Path) -> None:
    relay = free_port()
    _path, cfg = premium_config(tmp_path, "smpp", relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:  # type: ignore[arg-type]
        await _premium_mo(gw, sink, "STOP")
        assert gw.store.policy.is_opted_out(PHONE)
        started = await _premium_mo(gw, sink, "START")
        assert not gw.store.policy.is_opted_out(PHONE)
        assert "+48 601 123 456 answered START: it is off the opt-out list" in started
