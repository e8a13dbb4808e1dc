"""An MO whose UDH names a national table not read here (the Indian ones, an unknown id) is stored as
the phone sent it, its mail saying once that some letters may be wrong; and a character a phone cut
between two parts under the Portuguese single shift table is read with the table each part was read
with.

The line used to be added to the stored text: a STOP with an Indian table's header was "STOP\\n[The SMS
used …]", no opt-out word, and a premium SMS of a password alone was billed and listed with the line
as its message. A long one with a part missing had the line once per run of parts that came. The
built-in simulator delivers each MO over SMPP or CIMD2 as an SMSC would; a real SMTP sink catches the
mail; the gap's join by the timeout runs on a real SQLite file with the daemon's MO handling.
"""

from __future__ import annotations

from pathlib import Path

from gateway.reassembly import TIMEOUT_SECONDS, gap
from smsc.cimd2.charset import septets_to_cimd
from smsc.cimd2.packet import P
from smsc.decoding import decode_user_data
from smsc.gsmalphabet import gsm_encode
from smsc.simulator.smpp_texts import address_fields
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_conversations import World
from tests.test_mo_binary import FALLBACK, PHONE, binary_config, body_of, cimd2_part, smpp_part
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import CLIENT
from tests.test_two_way import parsed

HINDI, PORTUGUESE = 6, 3
ESC = 0x1B
NOTE = "The SMS used a national alphabet not supported here (Hindi): some letters may be wrong"


def udh(
    *, single: int | None = None, locking: int | None = None, part: tuple[int, int] | None = None
) -> bytes:
    body = bytes((0x00, 3, 0x42, part[1], part[0])) if part else b""
    body += bytes((0x24, 1, single)) if single is not None else b""
    body += bytes((0x25, 1, locking)) if locking is not None else b""
    return bytes((len(body),)) + body


async def delivered(
    tmp_path: Path, protocol: str, parts: list[object]
) -> tuple[str, list[tuple[object, ...]]]:
    """The mail body of the MO the simulator delivers as `parts`, and the whole MOs as stored."""
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(binary_config(tmp_path, protocol, relay)) as gw:
        core = gw.daemon.simulator.core
        await gw.until(lambda: core._pick(protocol) is not None)
        session = core._pick(protocol)
        for part in parts:
            await session.send_part(tuple(part.items()) if isinstance(part, dict) else tuple(part))
        await sink.wait(1)
        assert sink.messages[0][1] == [FALLBACK]
        rows = gw.store.db.conn.execute(
            "SELECT text, state FROM mo WHERE state NOT IN ('segment', 'joined') ORDER BY id"
        ).fetchall()
        optouts = gw.store.db.conn.execute("SELECT number FROM optouts").fetchall()
        return body_of(parsed(sink.messages[0][2])), [*rows, *optouts]


async def test_a_stop_with_an_indian_tables_header_over_smpp_is_an_opt_out(tmp_path: Path) -> None:
    body, stored = await delivered(
        tmp_path, "smpp", [smpp_part(udh(single=HINDI) + gsm_encode("STOP"), 0, 0x40)]
    )
    assert stored == [("STOP", "optout"), (PHONE,)]
    assert body.startswith("STOP\n\n[") and "is now opted out" in body
    assert body.count(NOTE) == 1


async def test_a_stop_with_an_indian_tables_header_over_cimd2_is_an_opt_out(tmp_path: Path) -> None:
    # CIMD2 carries the UDH in 032 and the GSM codes in 033's own spelling.
    params = [
        *cimd2_part(b"", 0, udh(locking=HINDI))[:-1],
        (P.USER_DATA, septets_to_cimd(gsm_encode("STOP"))),
    ]
    body, stored = await delivered(tmp_path, "cimd2", [params])
    assert stored == [("STOP", "optout"), (PHONE,)]
    assert body.count(NOTE) == 1


async def test_a_long_indian_mo_is_mailed_with_the_line_once_and_stored_without_it(tmp_path: Path) -> None:
    parts = [
        smpp_part(udh(locking=HINDI, part=(seq, 3)) + gsm_encode(text), 0, 0x40)
        for seq, text in ((1, "Namaste "), (2, "ji, "), (3, "kal milte hain"))
    ]
    body, stored = await delivered(tmp_path, "smpp", parts)
    assert stored == [("Namaste ji, kal milte hain", "fallback")]
    assert body.startswith("Namaste ji, kal milte hain\n\n[") and body.count(NOTE) == 1


async def test_a_long_indian_mo_joined_without_a_part_says_so_once(tmp_path: Path) -> None:
    # Parts 1 and 3 of 3 come as the SMPP link reads them; the timeout joins them as two runs.
    w = World(tmp_path)
    w.send("anna@acme.example")
    for seq, text in ((1, "one "), (3, "three")):
        read, concat = decode_user_data(udh(single=HINDI, part=(seq, 3)) + gsm_encode(text), 0, udhi=True)
        await w.mo(read, concat=concat)
    w.now += TIMEOUT_SECONDS + 1

    def expire() -> None:
        for mo_id in w.store.mo.join_stale_segments(w.now - TIMEOUT_SECONDS):
            w.events.whole_mo(mo_id)

    await w.store.write(expire)
    ((_, _, msg),) = w.outbox()
    body = str(msg.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert body.startswith(f"one  {gap(2, 2, 3)} three\n\n[") and body.count(NOTE) == 1
    (text,) = w.store.db.conn.execute("SELECT text FROM mo WHERE state = 'mailed'").fetchone()
    assert text == f"one  {gap(2, 2, 3)} three"


async def test_a_premium_sms_of_a_password_alone_with_an_indian_header_is_billed_without_the_line(
    tmp_path: Path,
) -> None:
    async with premium(tmp_path) as w:
        seen = len(w.sink.messages)
        session = w.gw.daemon.simulator.core._pick("smpp")
        fields = dict(address_fields(PHONE, "7355"), esm_class=0x40, data_coding=0)
        await session.send_part(
            tuple(dict(fields, short_message=udh(single=HINDI) + gsm_encode("KP123")).items())
        )
        await w.sink.wait(seen + 1)
        assert w.sink.messages[seen][1] == [CLIENT]
        assert body_of(parsed(w.sink.messages[seen][2])).count(NOTE) == 1
        conn = w.gw.store.db.conn
        assert conn.execute("SELECT text FROM premium_mo").fetchall() == [("",)]
        assert conn.execute("SELECT text FROM mo WHERE state = 'premium'").fetchall() == [("KP123",)]


async def test_an_escape_cut_between_parts_under_the_portuguese_single_shift_reads_as_its_letter(
    tmp_path: Path,
) -> None:
    # Portuguese single shift, default locking: the ESC ends part 1, 0x09 starts part 2; ESC 0x09 is "ç"
    # (A.2.3). Mapped back through the Portuguese locking table, the default's "Ç" read as 0x13: "Γ".
    one = udh(single=PORTUGUESE, part=(1, 2)) + gsm_encode("Cabe") + bytes((ESC,))
    two = udh(single=PORTUGUESE, part=(2, 2)) + bytes((0x09,)) + gsm_encode("a")
    body, stored = await delivered(tmp_path, "smpp", [smpp_part(one, 0, 0x40), smpp_part(two, 0, 0x40)])
    assert stored == [("Cabeça", "fallback")]
    assert body.startswith("Cabeça\n")
