"""R-2.4: an SMS the gateway ended unsent because its phone said STOP after the mail was accepted is no
failed delivery, and suspends no account; one an SMSC failed still counts.

Against real peers: mail over SMTP to the daemon, its built-in SMSC simulator over TCP, a real SMTP
sink for the bounces, the SQLite file; the clock is injected for quiet hours.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.config import parse_config
from gateway.store.settling import OPTED_OUT
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_policy import Clock

PHONES = ["601123456", "601123457"]


def judging_config(tmp_path: Path, relay_port: int) -> Any:
    """The built-in simulator over SMPP; one failure among the last 2 messages suspends (over 10 %)."""
    smpp, control = free_port(), free_port()
    text = config_text(
        tmp_path, smsc_port=smpp, relay_port=relay_port, suspend_after=2, suspend_failed_share=0.1
    )
    text = text.replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    return parse_config(text, source="test", base_dir=tmp_path)


async def test_sms_ended_by_a_stop_after_acceptance_suspend_no_account(tmp_path: Path) -> None:
    relay = free_port()
    tz = ZoneInfo("Europe/Warsaw")
    clock = Clock(datetime.now(tz).replace(hour=22, minute=0, second=0, microsecond=0))
    async with smtp_sink(relay) as sink, running_gateway(judging_config(tmp_path, relay), clock) as gw:
        core = gw.daemon.simulator.core
        store = gw.store
        await store.write(
            lambda: store.accounts.update_account("acme", quiet_start="21:00", quiet_end="08:00")
        )
        assert (await gw.send(mail(f"{PHONES[0]}@{DOMAIN}", "Nowa oferta", subject="Oferta"))).error is None
        await gw.until(lambda: len(core.records) == 1 and gw.states() == ["delivered"])
        # A campaign held for quiet hours; the first phone answers STOP before the window opens.
        bulk = mail(f"{PHONES[0]}@{DOMAIN}, {PHONES[1]}@{DOMAIN}", "Wiosenna promocja", Precedence="bulk")
        assert (await gw.send(bulk)).error is None
        await gw.until(lambda: len(gw.states()) == 3)
        stop = {"op": "mo", "reply_to_last": True, "text": "STOP"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, stop))["ok"]
        await gw.until(lambda: gw.states()[1] == "failed")
        reason = store.db.conn.execute("SELECT reason FROM messages ORDER BY id LIMIT 1 OFFSET 1").fetchone()
        assert reason == (OPTED_OUT,)
        await sink.wait(2)  # the hold notice and the opt-out's bounce: the notifier judged the account
        await store.drain()
        acme = store.accounts.get_account("acme")
        assert acme.suspended_at is None, acme.suspended_reason
        assert gw.states()[2] == "queued"  # held for the window, not for a suspension
        assert store.policy.failure_share(acme.id, 2) == (0, 1)  # judged: the one delivered
        # The window opens: the other phone's SMS goes, as a suspension would not have let it.
        clock.t += 10 * 3600 + 60
        gw.daemon.dispatcher.wake()
        await gw.until(lambda: gw.states()[1:] == ["failed", "delivered"])
        assert str(core.records[-1]["destination"]).endswith(PHONES[1])


async def test_an_sms_the_smsc_refuses_or_fails_still_counts(tmp_path: Path) -> None:
    # The other side of the rule: the simulator refuses numbers ending 0000 at submit and reports
    # those ending 13 failed; either is a failed delivery, and over the share suspends the account.
    for n, phone in enumerate(["601120000", "601120413"]):
        relay = free_port()
        async with smtp_sink(relay), running_gateway(judging_config(tmp_path / str(n), relay)) as gw:
            assert (await gw.send(mail(f"{phone}@{DOMAIN}", "Nowa oferta"))).error is None
            await gw.until(lambda: gw.states() == ["failed"])
            await gw.store.drain()
            acme = gw.store.accounts.get_account("acme")
            assert acme.suspended_at is not None, phone
            assert gw.store.policy.failure_share(acme.id, 2) == (1, 1), phone
