"""A bounce the `[mail] relay` hands back from its own address, which is on no account's network, is
taken: it fails the phone's answer mail and its copy goes to the fallback address.

MAIL took the null sender only from a network some account lists, so the relay's bounce of an answer
mail heard "550 5.7.1 Relay access denied: client host not allowed to relay; use the submission port
with authentication": the answer stayed `sent`, nothing went to the fallback address, and the advice
sent the relay's admin to a port a bounce cannot log in to. Now the relay's address may send `<>`,
but only to the gateway's own mailboxes: a phone, info@ and the other addresses are refused at RCPT,
so that the relay's address sends no SMS past the ACL. A stranger's `<>` is refused at MAIL without
the advice. The real daemon, the simulator over SMPP answering as the phone, a real SMTP sink as the
relay on 127.0.0.1, the bounce delivered to the relay port from that address.
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path
from typing import Any

from gateway.config import parse_config
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_answer_bounce_network import deliver, plain_bounce
from tests.test_bounces import parsed
from tests.test_own_numbers import FALLBACK, OURS
from tests.test_reply_refused import outbox

ACME, RELAY, STRANGER = "127.0.0.2", "127.0.0.1", "127.0.0.9"  # only acme's is an account's network


def config(tmp_path: Path, relay: int) -> Any:
    smpp, control = free_port(), free_port()
    text = config_text(
        tmp_path,
        smsc_port=smpp,
        relay_port=relay,
        default_sender=OURS,
        extra=f'\n[replies]\nfallback_address = "{FALLBACK}"\n',
    )
    text = text.replace('relay_networks = ["127.0.0.0/8"]', f'relay_networks = ["{ACME}/32"]', 1)
    text = text.replace(f'sender = "{OURS}"\n', "", 1).replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    return parse_config(text, source="test", base_dir=tmp_path)


def session(port: int, source: str, rcpts: list[str]) -> list[str]:
    """MAIL FROM:<> from `source`, then each RCPT: the replies, MAIL's first."""
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as c:
        c.ehlo("mx.example")
        said = [c.mail("")]
        said += [c.rcpt(r) for r in rcpts] if said[0][0] == 250 else []
        return [f"{code} {text.decode()}" for code, text in said]


async def test_the_relays_bounce_fails_the_answer_and_sends_its_copy(tmp_path: Path) -> None:
    port = free_port()
    cfg = config(tmp_path, port)
    assert cfg.mail.relay == f"{RELAY}:{port}"
    async with smtp_sink(port) as relay, running_gateway(cfg) as gw:
        assert gw.store.accounts.relay_owners(RELAY) == frozenset()
        first = mail(f"601222222@{DOMAIN}", body="Czy 10:00?", subject="Spotkanie")
        assert (await gw.send(first, source=ACME)).error is None
        core = gw.daemon.simulator.core
        await gw.until(lambda: len(core.records) == 1)
        command = {"op": "mo", "reply_to_last": True, "text": "Tak"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await gw.until(lambda: outbox(gw) == [("reply", STAFF, "sent")])
        await relay.wait(1)
        answer_id = parsed(relay.messages[0][2])["Message-ID"]
        own = gw.config.mail.from_address
        bounce = plain_bounce(answer_id, "<b1@x.example>")
        said = await asyncio.to_thread(deliver, gw.port, bounce, own, RELAY)
        assert said.startswith("250 "), said
        await gw.until(lambda: len(outbox(gw)) == 3)
        kinds = [(kind, to) for kind, to, _ in outbox(gw)]
        assert kinds[1:] == [("reply-fallback", FALLBACK), ("bounce-forward", FALLBACK)], kinds
        assert outbox(gw)[0] == ("reply", STAFF, "failed")

        # What else the relay's null sender may reach: the gateway's own mailboxes alone.
        rcpts = [f"postmaster@{DOMAIN}", f"601222222@{DOMAIN}", f"+48601333333@{DOMAIN}", f"info@{DOMAIN}"]
        said_to = await asyncio.to_thread(session, gw.port, RELAY, rcpts)
        assert said_to[0].startswith("250 "), said_to
        assert said_to[1].startswith("250 "), said_to
        for rcpt, reply in zip(rcpts[1:], said_to[2:], strict=True):
            assert reply == (
                f"550 5.7.1 <{rcpt}>: Relay access denied: the null sender <> from the mail relay is taken"
                f" only for the gateway's own mailboxes: its address <{own}>, postmaster and abuse"
            ), said_to
        assert len(core.records) == 1  # the user's SMS alone

        # Anyone else's null sender, as before, without the advice a bounce cannot follow.
        [stranger] = await asyncio.to_thread(session, gw.port, STRANGER, [own])
        assert stranger.startswith("550 5.7.1 Relay access denied: client host not allowed"), stranger
        assert "submission" not in stranger and "the null sender <> (a bounce)" in stranger, stranger
