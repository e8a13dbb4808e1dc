"""Bounces addressed to the gateway's own From address or to postmaster (R-1.7, RFC 5321 4.5.1): taken
at RCPT from the empty sender, recorded and forwarded to the fallback address as any bounce. Split
from test_bounces.py by subject (it was over 400 lines); a real SMTP client to the running gateway,
an SMTP sink as the relay.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import DOMAIN, STAFF, free_port, make_config, running_gateway, smtp_sink
from tests.test_bounces import (
    FALLBACK,
    WITH_FALLBACK,
    assert_forward_of,
    bounce,
    delivered,
    dsn,
    forwarded_subjects,
    outbox,
    parsed,
    rcpt_reply,
)


async def test_a_bounce_to_the_gateways_own_address_or_postmaster_is_forwarded(tmp_path: Path) -> None:
    # A notice of the gateway that bounces comes back to its From address; some MTAs write to
    # postmaster. Both were refused at RCPT (550 not a valid phone number), and the bounce lost.
    relay = free_port()
    own, postmaster = f"smsgw@{DOMAIN}", f"Postmaster@{DOMAIN}"
    async with smtp_sink(relay) as sink:
        config = make_config(tmp_path, smsc_port=1, relay_port=relay, extra=WITH_FALLBACK)
        assert config.mail.from_address == own
        async with running_gateway(config) as gw:
            # Only a bounce: a user's mail to the From address is refused (it takes no mail), and
            # to postmaster goes to the admin address (test_spec_smtp_postmaster.py).
            staff = [await asyncio.to_thread(rcpt_reply, gw.port, STAFF, a) for a in (own, postmaster)]
            answers = [
                await delivered(gw.port, bounce("<own-1@mx.acme.example>"), rcpt=own),
                await delivered(gw.port, dsn("<own-2@mx.acme.example>"), rcpt=postmaster),
            ]
            await forwarded_subjects(sink, 2)
            recorded = gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
            queued = outbox(gw)
    assert staff == [550, 250]
    assert all(a.startswith("250 2.0.0 OK: recorded, not sent as SMS (") for a in answers)
    assert recorded == 2 and queued == [("bounce-forward", "", FALLBACK)] * 2
    assert_forward_of(sink.messages[0], bounce("<own-1@mx.acme.example>"), "Undelivered Mail")
    assert_forward_of(
        sink.messages[1], dsn("<own-2@mx.acme.example>"), "Delivery Status Notification (Failure)"
    )
    assert f"To: {own}" in parsed(sink.messages[0][2]).get_body(("plain",)).get_content()


async def test_a_bounce_to_the_domainless_postmaster_is_taken(tmp_path: Path) -> None:
    # RFC 5321 4.5.1: <Postmaster> without a domain must be accepted; it was 550 relay access denied.
    config = make_config(tmp_path, smsc_port=1, relay_port=free_port(), extra=WITH_FALLBACK)
    async with running_gateway(config) as gw:
        codes = [await asyncio.to_thread(rcpt_reply, gw.port, s, r)
                 for s, r in (("", "postmaster"), ("", "PostMaster"), (STAFF, "postmaster"))]  # fmt: skip
        answer = await delivered(gw.port, dsn("<pm-1@mx.acme.example>"), rcpt="postmaster")
    assert codes == [250, 250, 250]  # from a user too, forwarded to the admin address
    assert answer.startswith("250 2.0.0 OK: recorded, not sent as SMS (")
