"""A suspension stops the parts the dispatcher had already claimed: none reaches the SMSC after it,
and the resume sends each of them once. Real daemon, real SMTP client, the simulator's SMPP server
over TCP, the CLI as a separate process.

Defect: the suspension held the account's waiting parts in the store, but the parts the dispatcher
had claimed ahead of the window (up to two windows per link, in memory) or that waited for their
pacing still went out after it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from gateway.config import parse_config
from gateway.dispatcher import OPTED_OUT
from gateway.store.policy import SUSPENDED_HOLD
from gateway.suspensions import LOOK_SECONDS
from tests.conftest import DOMAIN, Running, config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC, HeldSMSC
from tests.test_claim_ahead import count
from tests.test_process import smsgw

WINDOW, SMS = 4, 16


def numbers(n: int) -> list[str]:
    return [f"6011{i:05d}@{DOMAIN}" for i in range(n)]


async def cli(path: Path, *args: str) -> str:
    done = await asyncio.to_thread(smsgw, path, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def held(gw: Running) -> list[tuple[int, str]]:
    """(attempts, note) of every part the suspension holds."""
    return gw.store.db.conn.execute(
        "SELECT attempts, error FROM parts WHERE state = 'hold' AND error = ?", (SUSPENDED_HOLD,)
    ).fetchall()


async def test_parts_claimed_ahead_are_held_by_a_suspension_from_the_cli(tmp_path: Path) -> None:
    async with HeldSMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port).replace("window = 10", f"window = {WINDOW}")
        # The window stays full until the test answers: the CLI, a process of its own, can take longer
        # than 5 s on a loaded machine, and a response timeout meanwhile freed the window and took the
        # link down (its parts went out, or came back refused unsent with an attempt counted).
        text = text.replace("response_timeout_seconds = 5", "response_timeout_seconds = 60")
        path = tmp_path / "config.toml"
        path.write_text(text)
        async with running_gateway(parse_config(text, source=str(path), base_dir=tmp_path)) as gw:
            rcpts = numbers(SMS)
            assert (await gw.send(mail(rcpts, "Spring sale, 50% off everything"), rcpts)).error is None
            await smsc.wait_for(WINDOW)
            # The window is full and at least a window's worth is claimed ahead of it, in memory.
            await gw.until(lambda: count(gw, "state = 'active'") >= 2 * WINDOW)
            await cli(path, "account", "suspend", "acme", "--reason", "spam")
            # The dispatcher looks for suspensions at most every LOOK_SECONDS: a look made just before
            # the CLI's commit let the parts through for the rest of that time (what the design allows).
            await asyncio.sleep(2 * LOOK_SECONDS)
            smsc.answer(WINDOW)  # the window frees: the parts claimed ahead would go now
            await gw.until(lambda: count(gw, "state = 'active'") == 0 or len(smsc.received) > WINDOW)
            await asyncio.sleep(0.3)
            assert len(smsc.received) == WINDOW, "parts of the suspended account reached the SMSC"
            # Held as the suspension holds waiting parts, the claim's attempt undone.
            assert held(gw) == [(0, SUSPENDED_HOLD)] * (SMS - WINDOW)
            assert count(gw, "state = 'submitted'") == WINDOW

            await cli(path, "account", "resume", "acme")
            gw.daemon.dispatcher.wake()
            while len(smsc.received) < SMS:
                smsc.answer(len(smsc.held))
                await smsc.wait_until(lambda: bool(smsc.held) or len(smsc.received) == SMS)
            smsc.answer(len(smsc.held))
            await gw.until(lambda: count(gw, "state = 'submitted'") == SMS)
            await asyncio.sleep(0.3)
            sent = Counter(s.destination for s in smsc.received)
            assert len(sent) == SMS and set(sent.values()) == {1}  # each SMS once


async def test_parts_waiting_for_their_pacing_are_held_by_a_suspension_in_the_daemon(tmp_path: Path) -> None:
    # The same for a suspension made in the daemon itself (the panel, the automatic suspension),
    # with the parts handed to a link that lets 2 a second through: they wait for their turn.
    async with HappySMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port).replace(
            "max_per_second = 1000", "max_per_second = 2"
        )
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
            rcpts = numbers(8)
            assert (await gw.send(mail(rcpts, "Spring sale, 50% off everything"), rcpts)).error is None
            await smsc.wait_for(2)
            acme = gw.store.accounts.get_account("acme").id
            await gw.store.write(lambda: gw.store.policy.suspend_account(acme, "spam"))
            await asyncio.sleep(0.1)  # a submit written before the suspension may still be on its way
            before = len(smsc.received)
            await asyncio.sleep(1.6)  # three more would have gone at 2 a second
            assert len(smsc.received) == before, "parts of the suspended account reached the SMSC"
            await gw.until(lambda: count(gw, "state = 'active'") == 0)
            assert held(gw) == [(0, SUSPENDED_HOLD)] * (8 - before)

            await gw.store.write(lambda: gw.store.policy.resume_account(acme))
            gw.daemon.dispatcher.wake()
            await smsc.wait_for(8, timeout=15)
            await gw.until(lambda: gw.states() == ["delivered"] * 8)
            sent = Counter(s.destination for s in smsc.received)
            assert len(sent) == 8 and set(sent.values()) == {1}


async def test_a_stop_ends_the_parts_to_that_phone_already_claimed_ahead(tmp_path: Path) -> None:
    # a STOP ends every SMS still to go to that phone. The claim checked the opt-out list, but
    # the parts it had already taken (up to two windows, in memory) still went after the STOP.
    async with HeldSMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port).replace("window = 10", f"window = {WINDOW}")
        text = text.replace("response_timeout_seconds = 5", "response_timeout_seconds = 60")
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
            for i in range(2 * WINDOW):
                res = await gw.send(mail(f"601100000@{DOMAIN}", f"Offer {i}"), [f"601100000@{DOMAIN}"])
                assert res.error is None
            await smsc.wait_for(WINDOW)
            await gw.until(lambda: count(gw, "state = 'active'") == 2 * WINDOW)  # a window claimed ahead
            assert await smsc.inject_mo("+48601100000", "+48100200300", "STOP") >= 1
            await gw.until(lambda: gw.store.policy.is_opted_out("+48601100000"))
            await gw.until(lambda: count(gw, "state = 'failed'") == WINDOW)
            smsc.answer(WINDOW)  # the window frees: the parts claimed ahead would go now
            await gw.until(lambda: count(gw, "state = 'submitted'") == WINDOW)
            await asyncio.sleep(0.3)
            assert len(smsc.received) == WINDOW, "SMS reached the phone after its STOP"
            errors = gw.store.db.conn.execute("SELECT error FROM parts WHERE state = 'failed'").fetchall()
            assert {e for (e,) in errors} == {OPTED_OUT}
