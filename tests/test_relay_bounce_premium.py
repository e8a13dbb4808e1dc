"""Where premium numbers are set, the relay's null sender also reaches a premium SMS's answer address,
and its refusal of anything else says so.

A client answering a premium SMS writes to `premium-<token>@`; that answer's bounce comes back through
the relay like any other, and the address takes the null sender from anyone while premium numbers are
set (R-4.5). The refusal of a phone in the relay's bounce names the addresses it takes: without that
clause where tariffs exist, the relay's admin would read that only postmaster and abuse are open. The
real daemon on 127.0.0.1 with `[mail] relay` on the loopback address, a real SMTP client from it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.config import parse_config
from tests.conftest import DOMAIN, config_text, free_port, running_gateway
from tests.test_answer_bounce_from_relay import ACME, RELAY, session

PREMIUM = '\n[premium]\nnumbers = ["7155", "7355"]\nfallback_address = "ops@example.com"\n'


async def test_the_relays_null_sender_with_premium_numbers_set(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port(), relay_port=free_port(), extra=PREMIUM)
    text = text.replace('relay_networks = ["127.0.0.0/8"]', f'relay_networks = ["{ACME}/32"]', 1)
    cfg = parse_config(text, source="test", base_dir=tmp_path)
    assert cfg.premium.tariffs and cfg.mail.relay.startswith(f"{RELAY}:")
    own = cfg.mail.from_address
    answer = f"premium-{'a' * 24}@{DOMAIN}"
    async with running_gateway(cfg) as gw:
        to_answer = await asyncio.to_thread(session, gw.port, RELAY, [answer])
        said = await asyncio.to_thread(
            session, gw.port, RELAY, [f"postmaster@{DOMAIN}", f"601222222@{DOMAIN}"]
        )
    # The answer address is refused, if at all, by the premium rule, not as no bounce's recipient.
    assert to_answer == [
        "250 2.1.0 Sender OK",
        f"550 5.1.1 <{answer}>: no such answer or confirmation address",
    ]
    assert said[0].startswith("250 ") and said[1].startswith("250 "), said
    assert said[2] == (
        f"550 5.7.1 <601222222@{DOMAIN}>: Relay access denied: the null sender <> from the mail relay is"
        f" taken only for the gateway's own mailboxes: its address <{own}>, postmaster and abuse,"
        " and a premium SMS's answer address (premium-..., confirm-...)"
    ), said
