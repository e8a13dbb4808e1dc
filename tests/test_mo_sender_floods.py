"""MOs from senders that are no phone, and addresses an SMSC pads with blanks, over real TCP.

The hourly limit on answers mailed (`[replies] mails_per_phone_per_hour`) held only phones: a flood
from a sender ID ("PROMO") or an operator's short code ("8080") had each SMS mailed to the fallback
address, without end. Now such a sender is held as a phone is, its letters in either case one
sender, and what it kept goes in one mail after a quiet hour, from the gateway's address (no phone
to answer). A premium SMS is never held: the public paid for it.

An SMSC that writes an address with blanks around it ("7355 ", " 48601444999") had the paid SMS to
a premium number mailed to the fallback unbilled, and a phone's answer lose its conversation: the
drivers hand the address up without them. A real daemon on the SQLite file, a fake SMSC sending the
raw deliver_sm (SMPP) or the scripted deliver (CIMD2).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.config import parse_config
from smsc.cimd2.packet import Op, P
from smsc.smpp.codec import DELIVER_SM, encode_sm
from smsc.smpp.pdu import _phone
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HeldSMSC
from tests.test_cimd2_addresses import deliver as cimd2_deliver
from tests.test_cimd2_addresses import gateway_on_cimd2
from tests.test_two_way import parsed

T0 = 1_800_000_000.0
OPS = "ops@example.com"
OWN = "48100200300"


def gateway_config(tmp_path: Path, smsc: int, relay: int, limit: int = 3) -> Any:
    extra = (
        f'\n[replies]\nfallback_address = "{OPS}"\nmails_per_phone_per_hour = {limit}\n'
        '\n[premium]\nnumbers = ["7355"]\n'
    )
    text = config_text(tmp_path, smsc_port=smsc, relay_port=relay, extra=extra)
    return parse_config(text, source="test", base_dir=tmp_path)


class Wire:
    """Raw deliver_sm PDUs to the daemon's bound session, numbered as an SMSC numbers them."""

    def __init__(self, smsc: HeldSMSC) -> None:
        self.smsc, self.seq = smsc, 100

    def send(self, source: str, text: str, *, ton: int, dest: str = OWN, dest_ton: int = 1) -> None:
        self.seq += 1
        pdu = encode_sm(
            DELIVER_SM, self.seq, esm_class=0, source_addr_ton=ton, source_addr=source,
            dest_addr_ton=dest_ton, destination_addr=dest, short_message=text.encode(),
        )  # fmt: skip
        self.smsc.send_raw(pdu)


SETTLED = "SELECT COUNT(*) FROM mo WHERE state NOT IN ('new', 'segment')"


def settled(gw: Any, n: int) -> Callable[[], bool]:
    db = gw.store.db.conn
    return lambda: db.execute(SETTLED).fetchone()[0] >= n


def rows(gw: Any) -> list[tuple[str, str, str]]:
    return list(gw.store.db.conn.execute("SELECT source, destination, state FROM mo ORDER BY id"))


async def test_a_sender_id_and_a_short_code_are_held_to_the_hourly_limit_as_a_phone_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    relay = free_port()
    async with HeldSMSC() as smsc, smtp_sink(relay) as sink:
        cfg = gateway_config(tmp_path, smsc.port, relay)
        async with running_gateway(cfg, lambda: now[0]) as gw:
            await smsc.wait_until(lambda: len(smsc.sessions) > 0)
            wire = Wire(smsc)
            # An A2P flood writing its ID in another case now and then, and an operator's service loop.
            for n, sender in enumerate(["PROMO", "PROMO", "Promo", "promo", "PROMO"]):
                wire.send(sender, f"promo {n}", ton=5)
            for n in range(5):
                wire.send("8080", f"service {n}", ton=3)
            await gw.until(settled(gw, 10))
            # Premium SMS from the same senders, past their limit: each recorded as premium, never kept.
            for n in range(4):
                wire.send("PROMO" if n % 2 else "8080", f"KP123 vote {n}", ton=5 if n % 2 else 3, dest="7355")
            await gw.until(settled(gw, 14))
            got = rows(gw)
            assert [s for _, _, s in got[:5]] == ["fallback"] * 3 + ["throttled"] * 2
            assert [s for _, _, s in got[5:10]] == ["fallback"] * 3 + ["throttled"] * 2
            assert [s for _, _, s in got[10:]] == ["premium"] * 4
            premium = gw.store.db.conn.execute("SELECT COUNT(*) FROM premium_mo").fetchone()[0]
            assert premium == 4
            notes = [n for (n,) in gw.store.db.conn.execute("SELECT note FROM mo WHERE state = 'throttled'")]
            assert notes[0].startswith("more than 3 answers from promo within an hour: kept here")
            assert notes[2].startswith("more than 3 answers from 8080 within an hour: kept here")
            await sink.wait(10)  # 6 answers and the 4 premium SMS no service took, to the fallback
            subjects = [parsed(raw)["Subject"] for _, _, raw in sink.messages]
            flood = ("SMS from PROMO", "SMS from Promo", "SMS from 8080")
            assert sum(s.startswith(flood) for s in subjects) == 6
            before = len(sink.messages)
            now[0] += 3601  # an hour without more: what each sender kept goes in one mail
            await gw.until(lambda: all(s != "throttled" for _, _, s in rows(gw)))
            await sink.wait(before + 3)
        digests = {parsed(raw)["Subject"]: parsed(raw) for _, _, raw in sink.messages[before:]}
        assert sorted(digests) == [
            "SMS from 8080 kept during a flood",
            "SMS from PROMO kept during a flood",
            "SMS from promo kept during a flood",
        ]
        service = digests["SMS from 8080 kept during a flood"]
        # From the gateway, not from "+8080@": a Reply would have been an SMS to no phone.
        assert service["From"].addresses[0].addr_spec == cfg.mail.from_address
        assert service.get_content().startswith("2 answers from 8080 kept during a flood")


async def test_addresses_padded_with_blanks_are_read_without_them(tmp_path: Path) -> None:
    relay = free_port()
    async with HeldSMSC() as smsc, smtp_sink(relay) as sink:
        cfg = gateway_config(tmp_path, smsc.port, relay, limit=0)
        async with running_gateway(cfg) as gw:
            await smsc.wait_until(lambda: len(smsc.sessions) > 0)
            assert (await gw.send(mail(f"601444999@{DOMAIN}", body="Pasuje?"))).error is None
            await smsc.wait_until(lambda: len(smsc.received) == 1)
            smsc.answer()
            wire = Wire(smsc)
            wire.send("48601444999 ", "answer 1", ton=1)
            wire.send(" 48601444999", "answer 2", ton=1, dest=f" {OWN}")
            wire.send("48601444998", "KP123 paid 1", ton=1, dest="7355 ", dest_ton=0)
            wire.send("48601444998", "KP123 paid 2", ton=1, dest=" 7355", dest_ton=0)
            wire.send("48601444998", "not ours", ton=1, dest="+48 7355", dest_ton=0)  # inner blanks stay
            await gw.until(settled(gw, 5))
            assert rows(gw) == [
                ("+48601444999", f"+{OWN}", "mailed"),
                ("+48601444999", f"+{OWN}", "mailed"),
                ("+48601444998", "7355", "premium"),
                ("+48601444998", "7355", "premium"),
                ("+48601444998", "+48 7355", "fallback"),
            ]
            billed = gw.store.db.conn.execute("SELECT number, phone FROM premium_mo ORDER BY id").fetchall()
            assert billed == [("7355", "+48601444998")] * 2
            await sink.wait(3)


async def test_a_cimd2_delivery_padded_with_blanks_is_read_without_them(tmp_path: Path) -> None:
    async with gateway_on_cimd2(tmp_path) as (gw, conn):
        conn.send(cimd2_deliver(0, (P.ORIGINATOR, "+48601999888 "), "STOP"))
        conn.send(cimd2_deliver(2, (P.ALPHA_ORIGINATOR, " ORANGE "), "hi"))
        conn.send(cimd2_deliver(4, (P.ORIGINATOR, " 0048601999777"), "hello", destination="+48100200300 "))
        for _ in range(3):
            while (await conn.next(within=20)).op != Op.DELIVER_RESP:
                pass
        await gw.until(settled(gw, 3))
        assert gw.store.policy.is_opted_out("+48601999888")
        assert [(s, d) for s, d, _ in rows(gw)] == [
            ("+48601999888", "+48100200300"),
            ("ORANGE", "+48100200300"),
            ("+48601999777", "+48100200300"),
        ]


@pytest.mark.parametrize(
    ("written", "ton", "read"),
    [
        ("48601444999 ", 1, "+48601444999"),
        ("\x0048601444999\x00", 1, "+48601444999"),
        ("\t7355 ", 0, "7355"),
        ("+48 7355", 0, "+48 7355"),  # blanks inside: no number the gateway reads, kept as written
        ("   ", 5, "   "),  # nothing but blanks: recorded as the SMSC wrote it
        (" PROMO ", 5, "PROMO"),
    ],
)
def test_an_smpp_address_is_handed_up_without_the_blanks_around_it(written: str, ton: int, read: str) -> None:
    assert _phone(written.encode("latin-1"), ton) == read
