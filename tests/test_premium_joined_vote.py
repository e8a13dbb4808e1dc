"""A long premium vote the SMSC delivers joined, in one deliver_sm with its text in message_payload
(TLV 0x0424, sm_length 0; protocols.md lists it as a way MOs come), is billed as the parts the phone
sent, as the same vote in two concatenated segments is: the operator charged the phone per part.
Counted as one, the client's billing file and the summary said 3.00 where the phone paid 6.00.

The daemon with its built-in SMSC over SMPP and an injected clock receives the votes; `smsgw billing
run` and `smsgw premium stats` read them as processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smsc.simulator.smpp_texts import address_fields
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_billing_long_mo_month import t
from tests.test_billing_long_premium_month import (
    NUMBER,
    premium_configured,
    premium_lines,
    stats_total,
    verified_service,
)

LONG_VOTER, SHORT_VOTER = "+48601999888", "+48601777666"
LONG = "KP123 " + "glos na A, bo tak " * 16 + "koniec tekst"  # 306 GSM septets: two parts
SHORT = "KP123 [B]" + "b" * 149  # 160 septets, "[" and "]" two each: one part


async def test_a_long_vote_delivered_joined_is_billed_as_the_parts_the_phone_sent(tmp_path: Path) -> None:
    assert (len(LONG), len(SHORT) + 2) == (306, 160)
    relay = free_port()
    path, cfg = premium_configured(tmp_path, relay)
    now = [t(2026, 10, 20, 12)]
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: now[0]) as gw:
        db = gw.store.db.conn
        session = await verified_service(gw, sink, cfg)

        def joined(phone: str, vote: str) -> tuple[Any, ...]:
            """One deliver_sm holding the whole text: short_message empty, the text in message_payload."""
            fields = address_fields(phone, NUMBER)
            payload = vote.replace("[", "\x1b<").replace("]", "\x1b>").encode("latin-1")  # unpacked septets
            return tuple(
                dict(fields, esm_class=0, data_coding=0, short_message=b"", message_payload=payload).items()
            )

        now[0] = t(2026, 10, 21, 10)
        await session.send_part(joined(LONG_VOTER, LONG))
        await gw.until(lambda: db.execute("SELECT COUNT(*) FROM premium_mo").fetchone()[0] == 1)
        now[0] = t(2026, 10, 21, 11)
        await session.send_part(joined(SHORT_VOTER, SHORT))
        await gw.until(lambda: db.execute("SELECT COUNT(*) FROM premium_mo").fetchone()[0] == 2)
        rows = db.execute(
            "SELECT p.phone, p.parts, p.price, p.commission, p.state, m.concat_total, length(m.text)"
            " FROM premium_mo p JOIN mo m ON m.id = p.mo_id ORDER BY p.id"
        ).fetchall()

    # Whole texts with no concatenation, as the phone wrote them, each at the parts its split needed.
    assert rows == [
        (LONG_VOTER, 2, 600, 220, "mailed", None, 306),
        (SHORT_VOTER, 1, 300, 110, "mailed", None, 158),
    ]
    assert premium_lines(path, "2026-10") == [
        ("2026-10-21", "10:00:00", LONG_VOTER, "2", "6.00"),
        ("2026-10-21", "11:00:00", SHORT_VOTER, "1", "3.00"),
    ]
    assert stats_total(path, "2026-10") == "total 2 3 9.00 3.30"
