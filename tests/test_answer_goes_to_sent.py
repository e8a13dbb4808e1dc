"""R-3.1: a phone's answer goes to the user whose SMS last reached the phone, quoting that SMS.

Two users of one account write to one phone from the account's number (no reply pool, as
shipped). The second user's SMS does not leave: held for quiet hours, or then cancelled. The
phone answers: the answer is to the first user's SMS, the only one it got, and `conversation list`
does not show the second user's conversation as open. Once the held SMS goes, the next answer is
to it. A real daemon with its built-in SMSC simulator, real SMTP in and a real relay sink out;
quiet hours are read off the wall clock, so the window is set around the hour the test runs at.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from gateway.config import Config, parse_config
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_process import smsgw
from tests.test_quiet_hours_view import window
from tests.test_two_way import parsed

DEMO = "demo@acme.example"
PHONE = "+48601123892"
OURS = "+48100200300"  # acme's sender: both users' SMS come from it


def written_config(tmp_path: Path, relay: int) -> tuple[Path, Config]:
    """The simulator on free ports, answer mail to the relay sink on `relay`."""
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(tmp_path, smsc_port=smpp, relay_port=relay).replace(
        f'users = ["{STAFF}"]', f'users = ["{STAFF}", "{DEMO}"]'
    )
    text = text.replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\n"
        f'control_port = {control}\nlog = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path, parse_config(text, source=str(path), base_dir=tmp_path)


async def demo_then_held_anna(gw: Any) -> int:
    """demo@'s SMS goes to the phone; anna@'s, bulk in quiet hours, is held. Returns anna's message id."""
    core = gw.daemon.simulator.core
    asked = mail(f"601123892@{DOMAIN}", body="Can you call me?", subject="Call")
    asked.replace_header("From", DEMO)
    assert (await gw.send(asked, sender=DEMO)).error is None
    await gw.until(lambda: len(core.records) == 1)
    start, end = window(2)
    await gw.store.write(lambda: gw.store.accounts.update_account("acme", quiet_start=start, quiet_end=end))
    bulk = mail(f"601123892@{DOMAIN}", body="Our spring offer", subject="Offer", Precedence="bulk")
    assert (await gw.send(bulk)).error is None
    [(held, due)] = gw.store.db.conn.execute(
        "SELECT m.id, p.next_attempt_at FROM messages m JOIN parts p ON p.message_id = m.id"
        " WHERE m.text LIKE '%spring offer%'"
    ).fetchall()
    assert due > time.time() + 3600  # held until the window's end
    return int(held)


async def answer(gw: Any, sink: Any, text: str, count: int) -> tuple[list[str], str]:
    """The phone answers our number; (the reply mail's recipients, its body) once it is mailed.
    `count`: the how-manieth answer mailed (the sink also gets the held SMS's notice)."""
    command = {"op": "mo", "source": PHONE, "destination": OURS, "text": text}
    assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
    await gw.until(lambda: len(replies(sink)) >= count)
    rcpts, raw = replies(sink)[count - 1]
    return rcpts, parsed(raw).get_content()


def replies(sink: Any) -> list[tuple[list[str], bytes]]:
    """The answers mailed, each from the phone's address."""
    return [
        (r, raw)
        for _, r, raw in sink.messages
        if parsed(raw)["From"].addresses[0].addr_spec == f"{PHONE}@{DOMAIN}"
    ]


async def conversation_states(path: Path) -> dict[str, str]:
    listing = await asyncio.to_thread(smsgw, path, "conversation", "list")
    assert listing.returncode == 0, listing.stderr
    # The state is the last word, or "displaced: a newer SMS from this number takes its answers …".
    states = {}
    for line in listing.stdout.splitlines():
        words = line.split()
        states[words[3]] = "displaced" if "displaced:" in words else words[-1]
    return states


async def test_an_answer_is_to_the_sms_that_went_not_to_one_held_and_then_to_it_once_sent(
    tmp_path: Path,
) -> None:
    relay = free_port()
    path, cfg = written_config(tmp_path, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        await demo_then_held_anna(gw)
        # anna's SMS is held: the phone got only demo's, whatever the conversations' order.
        rcpts, body = await answer(gw, sink, "Sure, calling in 5", 1)
        assert rcpts == [DEMO]
        assert "Sure, calling in 5" in body and "Can you call me?" in body
        assert "spring offer" not in body
        assert await conversation_states(path) == {DEMO: "open", STAFF: "unreached"}
        [(user,)] = gw.store.db.conn.execute(
            "SELECT c.user_email FROM mo m JOIN conversations c ON c.id = m.conversation_id"
        ).fetchall()
        assert user == DEMO
        # Quiet hours end (turned off): anna's SMS goes, as of now the last the phone got.
        await gw.store.write(
            lambda: gw.store.accounts.update_account("acme", quiet_start=None, quiet_end=None)
        )
        core = gw.daemon.simulator.core
        await gw.until(lambda: len(core.records) == 2)
        await gw.until(
            lambda: (
                gw.store.db.conn.execute(
                    "SELECT 1 FROM parts WHERE text LIKE '%spring offer%' AND submitted_at IS NOT NULL"
                ).fetchone()
                is not None
            )
        )
        rcpts, body = await answer(gw, sink, "Not interested", 2)
        assert rcpts == [STAFF]
        assert "spring offer" in body and "Can you call me?" not in body
        # demo's conversation no longer gets the answers: anna's newer SMS from the number does.
        assert await conversation_states(path) == {DEMO: "displaced", STAFF: "open"}


async def test_an_answer_after_the_other_users_sms_was_cancelled_is_to_the_sms_that_went(
    tmp_path: Path,
) -> None:
    relay = free_port()
    path, cfg = written_config(tmp_path, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        held = await demo_then_held_anna(gw)
        await gw.store.write(lambda: gw.store.admin.cancel_message(held))
        rcpts, body = await answer(gw, sink, "Sure, calling in 5", 1)
        assert rcpts == [DEMO]
        assert "Can you call me?" in body and "spring offer" not in body
        assert (await conversation_states(path))[STAFF] == "unreached"
