"""A bounce naming no recipient that comes from the mail relay fails a phone's answer mail when the
relay is given by name (`[mail] relay = "localhost:PORT"`), as it does when the relay is given as an
address.

The relay's name was never resolved: no client's address equals a name, so a bounce the relay
handed back (the recipient's server returns it by way of the relay) was forwarded as any bounce, the
answer stayed `sent` and its copy never went. Now the name is resolved off the event loop and kept
for a while; a name that does not resolve is no address, said once in the log. The real daemon, the
simulator over SMPP answering as the phone, a real SMTP sink as the relay, reached as "localhost",
the bounce delivered to the relay port from the relay's address (127.0.0.1) and from another.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from gateway.config import parse_config
from gateway.relayaddresses import FAILED_LIFETIME, RelayAddresses
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_answer_bounce_network import deliver, plain_bounce
from tests.test_bounces import parsed
from tests.test_own_numbers import FALLBACK, OURS
from tests.test_reply_refused import outbox

ACME, OTHER = "127.0.0.2", "127.0.0.3"  # acme's mail server; beta's, which is not the relay


def config(tmp_path: Path, relay: int) -> Any:
    """acme on 127.0.0.2 alone; beta's networks hold 127.0.0.1, the relay's address: a bounce comes
    in only from a client's network, and a shared relay is on one."""
    smpp, control = free_port(), free_port()
    text = config_text(
        tmp_path,
        smsc_port=smpp,
        relay_port=relay,
        default_sender=OURS,
        extra=f'\n[[account]]\nname = "beta"\nrelay_networks = ["127.0.0.1/32", "{OTHER}/32"]\n'
        f'users = ["bob@beta.example"]\n\n[replies]\nfallback_address = "{FALLBACK}"\n',
    )
    text = text.replace('relay_networks = ["127.0.0.0/8"]', f'relay_networks = ["{ACME}/32"]', 1)
    text = text.replace(f'relay = "127.0.0.1:{relay}"', f'relay = "localhost:{relay}"', 1)
    text = text.replace(f'sender = "{OURS}"\n', "", 1).replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    return parse_config(text, source="test", base_dir=tmp_path)


async def test_a_bounce_from_a_relay_given_by_name_fails_the_answer(tmp_path: Path) -> None:
    port = free_port()
    cfg = config(tmp_path, port)
    assert cfg.mail.relay == f"localhost:{port}"
    async with smtp_sink(port) as relay, running_gateway(cfg) as gw:
        first = mail(f"601222222@{DOMAIN}", body="Czy 10:00?", subject="Spotkanie")
        assert (await gw.send(first, source=ACME)).error is None
        core = gw.daemon.simulator.core
        await gw.until(lambda: len(core.records) == 1)
        command = {"op": "mo", "reply_to_last": True, "text": "Tak"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await gw.until(lambda: outbox(gw) == [("reply", STAFF, "sent")])
        await relay.wait(1)
        answer_id = parsed(relay.messages[0][2])["Message-ID"]
        rcpt = gw.config.mail.from_address
        # From beta's other server, neither the relay nor acme's: forwarded as any bounce.
        said = await asyncio.to_thread(
            deliver, gw.port, plain_bounce(answer_id, "<b1@x.example>"), rcpt, OTHER
        )
        assert said.startswith("250 "), said
        await gw.until(lambda: len(outbox(gw)) == 2)
        assert outbox(gw) == [("reply", STAFF, "sent"), ("bounce-forward", FALLBACK, outbox(gw)[1][2])]
        # From the relay ("localhost"), on beta's network too: the answer's bounce.
        said = await asyncio.to_thread(
            deliver, gw.port, plain_bounce(answer_id, "<b2@x.example>"), rcpt, "127.0.0.1"
        )
        assert said.startswith("250 "), said
        await gw.until(lambda: len(outbox(gw)) == 4)
        kinds = [(kind, to) for kind, to, _ in outbox(gw)]
        assert kinds[2:] == [("reply-fallback", FALLBACK), ("bounce-forward", FALLBACK)], kinds
        assert outbox(gw)[0] == ("reply", STAFF, "failed")


async def test_the_relays_name_is_resolved_kept_and_a_failure_said_once() -> None:
    now = [1000.0]
    assert "127.0.0.1" in await RelayAddresses("localhost:25", lambda: now[0]).current()
    assert await RelayAddresses("[2001:db8::1]:25", lambda: now[0]).current() == {"2001:db8::1"}
    assert await RelayAddresses("192.0.2.1:25", lambda: now[0]).current() == {"192.0.2.1"}
    assert await RelayAddresses("maildir:var/mail", lambda: now[0]).current() == frozenset()
    gone = RelayAddresses("no-such-relay.invalid:25", lambda: now[0])
    with capture_logs() as logs:
        assert await gone.current() == frozenset()
        assert await gone.current() == frozenset()  # kept: not asked again
        now[0] += FAILED_LIFETIME + 1
        assert await gone.current() == frozenset()  # asked again, failed again: not said again
    said = [e for e in logs if e["event"] == "answerbounce.relay_unresolved"]
    assert len(said) == 1 and said[0]["relay"] == "no-such-relay.invalid", logs
