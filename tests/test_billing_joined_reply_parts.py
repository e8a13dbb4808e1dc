"""A long reply the SMSC delivers joined (the whole text in one MO, with no concatenation) is billed as
the parts the phone's split needed for it, by the same rule as a premium vote delivered so: SMPP's
message_payload, and CIMD2's one 20 whose 033 holds the whole text. Counted as one, the account's
billing file said 1 part where the phone sent 2.

Over CIMD2, an SMSC that gave no usable 060 stamp left the store guessing the link's protocol from the
stamp: the DCS was read by SMPP's table, where 2 is binary octets (134 a part), not CIMD2's GSM
alphabet (153 septets a part), and a 2-part text was counted, and a premium vote billed, as 3.

The daemon with its built-in SMSC (SMPP) or the simulator's CIMD2 server over TCP, an injected clock;
`smsgw billing run` reads the month as a process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from billing_reports.repo import open_reader, reply_rows
from gateway.config import SimulatorSection, parse_config
from gateway.store.db import Store
from smsc.cimd2.packet import P
from smsc.simulator.cimd2_server import Cimd2Server
from smsc.simulator.core import SimulatorCore
from smsc.simulator.smpp_texts import address_fields
from tests.conftest import DOMAIN, Running, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_billing_long_mo_month import OURS, brief, configured, lines, t
from tests.test_cimd2_mo_without_user_data import PREMIUM, session
from tests.test_mo_redelivery import confirmed_kp123
from tests.test_store import undo_migration_65

PHONE = "+48601000001"
LONG = "Tak, bede o 10:00 " * 17  # 306 GSM septets: two parts of 153
SENT = ("2026-10-21", "10:00:00", "MO-reply", PHONE)


async def asked(gw: Running, now: list[float]) -> None:
    """A staff member's SMS to the phone, delivered, so that the phone's answer is the account's reply."""
    db = gw.store.db.conn
    await gw.store.write(lambda: gw.store.accounts.set_billing_addresses("acme", ["billing@acme.pl"]))
    now[0] = t(2026, 10, 20, 12)
    assert (await gw.send(mail(f"{PHONE[3:]}@{DOMAIN}", body="question?"))).error is None
    await gw.until(lambda: db.execute("SELECT state FROM messages").fetchone() == ("delivered",))
    now[0] = t(2026, 10, 21, 10)


def mo_parts(gw: Running) -> list[tuple[Any, ...]]:
    return list(gw.store.db.conn.execute("SELECT concat_total, length(text), state FROM mo ORDER BY id"))


async def test_a_long_reply_delivered_joined_over_smpp_is_billed_as_the_parts_the_phone_sent(
    tmp_path: Path,
) -> None:
    assert len(LONG) == 306
    relay = free_port()
    path, cfg = configured(tmp_path, relay)
    now = [t(2026, 10, 20, 11)]
    async with smtp_sink(relay) as sink, running_gateway(cfg, clock=lambda: now[0]) as gw:
        await asked(gw, now)
        await gw.until(lambda: gw.daemon.simulator.core._pick("smpp") is not None)
        fields = address_fields(PHONE, OURS)
        # One deliver_sm holding the whole text: short_message empty, the text in message_payload.
        joined = dict(fields, esm_class=0, data_coding=0, short_message=b"", message_payload=LONG.encode())
        await gw.daemon.simulator.core._pick("smpp").send_part(tuple(joined.items()))
        await gw.until(lambda: len(sink.messages) >= 1)
        assert mo_parts(gw) == [(None, 306, "mailed")]

    assert [s for s in brief(lines(path, "2026-10")) if s[2] == "MO-reply"] == [(*SENT, "2", "")]


@asynccontextmanager
async def on_cimd2(tmp_path: Path, now: list[float]) -> AsyncIterator[tuple[Running, Cimd2Server, Path]]:
    """The daemon on a CIMD2 link to the simulator's server, acme's premium service KP123 confirmed."""
    core = SimulatorCore(SimulatorSection(system_id="smsgw", password="secret"), tmp_path / "sim.jsonl")
    server = Cimd2Server(core, retry_delay=0.05)
    await server.start()
    relay = free_port()
    try:
        async with smtp_sink(relay):
            text = config_text(tmp_path, smsc_port=server.port, relay_port=relay, extra=PREMIUM)
            path = tmp_path / "config.toml"
            path.write_text(text.replace('type = "smpp"', 'type = "cimd2"'))
            cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
            async with running_gateway(cfg, clock=lambda: now[0]) as gw:
                await confirmed_kp123(gw, path)
                await gw.until(lambda: any(s.logged_in for s in server.sessions))
                yield gw, server, path
    finally:
        await server.stop()
        await core.close()


async def test_a_long_reply_and_vote_delivered_joined_over_cimd2_without_a_stamp_count_by_cimd2s_dcs(
    tmp_path: Path,
) -> None:
    now = [t(2026, 10, 20, 11)]
    async with on_cimd2(tmp_path, now) as (gw, server, path):
        await asked(gw, now)
        db = gw.store.db.conn
        # DCS 2 (CIMD2: the GSM alphabet; SMPP: binary) and a 060 that reads as no time (month 13).
        for destination, text in ((OURS[1:], LONG), ("7355", "KP123 " + LONG[6:])):
            params = ((P.DESTINATION, destination), (P.ORIGINATOR, PHONE), (P.SCTS, "261399100000"))
            await session(server).send_part((*params, (P.DCS, "2"), (P.USER_DATA, text)))
        await gw.until(lambda: db.execute("SELECT COUNT(*) FROM premium_mo").fetchone()[0] == 1)
        await gw.until(lambda: db.execute("SELECT COUNT(*) FROM mo WHERE state != 'new'").fetchone()[0] == 2)
        assert db.execute("SELECT smsc_time, state FROM mo").fetchall() == [
            (None, "mailed"),
            (None, "premium"),
        ]
        assert db.execute("SELECT parts, price FROM premium_mo").fetchall() == [(2, 600)]

    assert [s for s in brief(lines(path, "2026-10")) if s[2] == "MO-reply"] == [(*SENT, "2", "")]


def test_migration_65_counts_older_mos_by_the_protocol_their_links_bind_was_noted(tmp_path: Path) -> None:
    # MOs stored before migration 65 keep no protocol: one without CIMD2's stamp is CIMD2's when the
    # last start noted its link's name with a CIMD2 bind; the others are read as before.
    path = tmp_path / "db.sqlite"
    s = Store.open(path)
    conn = s.db.conn
    acme = s.accounts.add_account("acme").id
    undo_migration_65(conn)
    conn.execute("UPDATE schema_version SET version = 64")
    conn.executemany(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)",
        [("link_bind/old", "cimd2|10.0.0.1|9971|smsgw"), ("link_bind/main", "smpp|10.0.0.2|2775|smsgw")],
    )
    for link, stamp, state in [
        ("old", None, "mailed"),  # a CIMD2 link since renamed or removed: no usable 060
        ("main", None, "mailed"),
        ("gone", "261021100000", "mailed"),  # never noted, CIMD2's stamp
        ("gone", None, "mailed"),  # never noted, no stamp: SMPP's table, as before
        ("old", None, "segment"),  # a part: no whole text to count
    ]:
        conn.execute(
            "INSERT INTO mo (link, source, destination, text, data_coding, state, received_at, account_id,"
            " smsc_time) VALUES (?, ?, '+48100200300', ?, 2, ?, ?, ?, ?)",
            (link, PHONE, LONG, state, t(2026, 10, 21, 10), acme, stamp),
        )
    s.close()
    s = Store.open(path)
    assert s.db.conn.execute("SELECT protocol, parts FROM mo ORDER BY id").fetchall() == [
        ("cimd2", None),
        (None, None),  # as before: SMPP's table without a stamp
        (None, None),  # as before: CIMD2's with its stamp
        (None, None),
        (None, None),
    ]
    # DCS 2: CIMD2's GSM alphabet (153 septets a part), SMPP's binary octets (134 a part).
    assert [s.mo.parts(i) for i in range(1, 5)] == [2, 3, 2, 3]
    s.close()
    reader = open_reader(path)
    rows = reply_rows(reader, acme, t(2026, 10, 1), t(2026, 11, 1))
    assert [row[4] for row in rows] == [2, 3, 2, 3]  # the reply lines' parts, by the same rule
    reader.close()
