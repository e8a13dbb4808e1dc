"""A bounce of a phone's answer mail fails that answer although no `[replies] fallback_address` is set
(the shipped config): the phone's answer ends `failed`, "no other address to send it to", as a refusal
at the relay's own session ends it.

The bounce was recorded and nothing else: the answer stayed `sent`, its MO `mailed`, and nobody could
learn that the user never had it. A delay warning still fails nothing. The real daemon, the simulator
over SMPP answering as the phone, a real SMTP sink as the relay on 127.0.0.1, the bounce delivered to the
relay port from the relay's address.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gateway.config import parse_config
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_answer_bounce_from_relay import ACME, RELAY
from tests.test_answer_bounce_network import deliver, plain_bounce
from tests.test_bounces import parsed
from tests.test_own_numbers import OURS
from tests.test_reply_refused import outbox


def config(tmp_path: Path, relay: int) -> Any:
    smpp, control = free_port(), free_port()
    text = config_text(tmp_path, smsc_port=smpp, relay_port=relay, default_sender=OURS)
    assert "fallback_address" not in text
    text = text.replace('relay_networks = ["127.0.0.0/8"]', f'relay_networks = ["{ACME}/32"]', 1)
    text = text.replace(f'sender = "{OURS}"\n', "", 1).replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    return parse_config(text, source="test", base_dir=tmp_path)


def mo_state(gw: Any) -> tuple[str, str]:
    row = gw.store.db.conn.execute("SELECT state, COALESCE(note, '') FROM mo ORDER BY id DESC LIMIT 1")
    return tuple(row.fetchone())  # type: ignore[return-value]


async def test_an_answer_mails_bounce_fails_it_with_no_fallback_address(tmp_path: Path) -> None:
    port = free_port()
    cfg = config(tmp_path, port)
    assert cfg.replies.fallback_address is None
    async with smtp_sink(port) as relay, running_gateway(cfg) as gw:
        first = mail(f"601222222@{DOMAIN}", body="Czy 10:00?", subject="Spotkanie")
        assert (await gw.send(first, source=ACME)).error is None
        core = gw.daemon.simulator.core
        await gw.until(lambda: len(core.records) == 1)
        command = {"op": "mo", "reply_to_last": True, "text": "Tak"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await gw.until(lambda: [row[2] for row in outbox(gw)] == ["sent"])
        await relay.wait(1)
        assert mo_state(gw)[0] == "mailed"
        answer_id = parsed(relay.messages[0][2])["Message-ID"]
        bounce = plain_bounce(answer_id, "<b1@x.example>")
        said = await asyncio.to_thread(deliver, gw.port, bounce, gw.config.mail.from_address, RELAY)
        assert said.startswith("250 "), said
        await gw.until(lambda: mo_state(gw)[0] == "failed")
        _state, note = mo_state(gw)
        assert "no other address to send it to ([replies] fallback_address)" in note, note
        assert [(kind, state) for kind, _rcpt, state in outbox(gw)] == [("reply", "failed")]
        assert len(core.records) == 1  # the bounce sent no SMS
