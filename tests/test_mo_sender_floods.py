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
from gateway.conversations import kept
from smsc.cimd2.packet import Op, P
from smsc.smpp.codec import DELIVER_SM, encode_sm
from smsc.smpp.pdu import _phone
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HeldSMSC
from tests.test_cimd2_addresses import deliver as cimd2_deliver
from tests.test_cimd2_addresses import gateway_on_cimd2
from tests.test_conversations import World
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
            await sink.wait(before + 2)
        # One digest for the sender ID whatever the case its kept answers came in ("promo", "PROMO"),
        # as the hourly count held it: not a mail per spelling.
        found = [parsed(raw) for _, _, raw in sink.messages[before:]]
        digests = {m["Subject"]: m for m in found}
        assert len(found) == 2
        assert sorted(digests) == ["SMS from 8080 kept during a flood", "SMS from PROMO kept during a flood"]
        promo = digests["SMS from PROMO kept during a flood"].get_content()
        assert promo.startswith("2 answers from PROMO kept during a flood")
        assert "promo 3" in promo and "promo 4" in promo
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


# ---- below the network: a sender ID's spellings are one sender's kept answers ----------------


async def mail_due(w: World) -> int:
    return await w.store.write(lambda: kept.mail_due(w.store, w.config))  # type: ignore[arg-type]


def digests(w: World) -> list[str]:
    return [m.get_content() for k, _, m in w.outbox() if k == kept.FALLBACK_KIND]


async def test_a_sender_id_quiet_in_one_spelling_waits_while_it_floods_in_another(tmp_path: Path) -> None:
    # "PROMO" was held with "promo" by the hourly count, but its kept answers were read by spelling:
    # "PROMO", quiet for an hour, had a digest while "promo" still flooded, and "promo" one of its own.
    w = World(tmp_path, f'fallback_address = "{OPS}"\nmails_per_phone_per_hour = 1')
    await w.mo("promo 0", source="PROMO")  # mailed
    w.now += 10
    await w.mo("promo 1", source="PROMO")  # kept
    w.now += 3000
    await w.mo("promo 2", source="promo")  # kept: the same sender, written anew
    w.now += 700  # "PROMO" quiet for an hour, "promo" not
    assert await mail_due(w) == 0 and digests(w) == []
    w.now += 3000
    conn = w.store.db.conn
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        assert await mail_due(w) == 1
    finally:
        conn.set_trace_callback(None)
    assert await mail_due(w) == 0
    (body,) = digests(w)
    assert body.startswith("2 answers from PROMO kept during a flood")
    assert "promo 1" in body and "promo 2" in body
    assert w.mo_states() == ["fallback"] * 3
    # Read off the index of kept answers, the spellings as a range of it: never every MO.
    reads = [s for s in statements if s.lstrip().startswith("SELECT") and "throttled" in s]
    assert len(reads) >= 2
    for sql in reads:
        plan = " / ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "mo_kept" in plan and "mo_state" not in plan, (sql, plan)
        assert "LIMIT 20" not in sql or "TEMP B-TREE" not in plan, (sql, plan)  # the due senders: no sort


async def test_a_sender_ids_older_kept_answers_stay_kept_in_every_spelling_after_its_last_mail(
    tmp_path: Path,
) -> None:
    # Past the fifth hourly mail a sender's older kept answers stay kept (`kept_phones.closed_at`):
    # recorded under one spelling, a new one in another ("PROMO") had them all mailed again, 50 an hour.
    w = World(tmp_path, f'fallback_address = "{OPS}"\nmails_per_phone_per_hour = 1')
    await w.mo("first", source="Promo")
    w.now += 10
    await w.mo("kept 0", source="Promo")
    conn = w.store.db.conn
    (seed,) = conn.execute("SELECT id FROM mo WHERE state = 'throttled'").fetchone()
    cols = [r[1] for r in conn.execute("PRAGMA table_info(mo)") if r[1] not in ("id", "source", "text")]
    with conn:
        conn.executemany(
            f"INSERT INTO mo (source, text, {', '.join(cols)}) SELECT ?, ?, {', '.join(cols)} FROM mo"
            " WHERE id = ?",
            [("promo" if n % 2 else "Promo", f"kept {n}", seed) for n in range(1, 300)],
        )
        conn.execute("UPDATE mo SET received_at = received_at + (id - ?) * 10 WHERE id > ?", (seed, seed))
    w.now += 3000
    for hour in range(1, 8):
        w.now += 3601
        assert await mail_due(w) == (1 if hour <= 5 else 0), hour
    assert w.mo_states() == ["fallback"] * 251 + ["throttled"] * 50
    await w.mo("a new one", source="promo")  # mailed: an hour passed
    await w.mo("and another, kept", source="PROMO")  # now first of its spellings in the index
    w.now += 3601
    assert await mail_due(w) == 1
    body = digests(w)[-1]
    assert body.startswith("1 answer from PROMO kept during a flood at ")
    assert "and another, kept" in body and "kept 299" not in body
