"""An MO stored by 0.2.25 with a national table not read here, delivered again after the upgrade, is the
same SMS: not mailed again.

0.2.25 added the line its mail says ("[The SMS used a national alphabet not supported here (Hindi):
some letters may be wrong.]") to the stored text; the text is now stored alone, the line in the note.
A copy stored before the upgrade whose acknowledgement the SMSC never confirmed (a crash) comes again
as the text alone, and was taken for a new SMS: mailed a second time, its STOP acting again. The
built-in simulator delivers the MOs over SMPP and CIMD2 (whose stamp, 060, the copy keeps); a real
SMTP sink catches the mail; the row 0.2.25 left is written to the daemon's SQLite file as it wrote it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smsc.cimd2.charset import septets_to_cimd
from smsc.cimd2.packet import P
from smsc.gsmalphabet import gsm_encode
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_mo_alphabet_not_read import HINDI, NOTE, udh
from tests.test_mo_binary import FALLBACK, binary_config, body_of, cimd2_part, smpp_part
from tests.test_two_way import parsed

TEXT = "Kod 1234 ok"
AS_0_2_25 = f"{TEXT}\n[{NOTE}.]"


def part(protocol: str, text: str, *, national: bool) -> tuple[object, ...]:
    """An MO of `text`, its UDH naming the Hindi table (not read here) when `national`."""
    if protocol == "smpp":
        if national:
            return tuple(smpp_part(udh(single=HINDI) + gsm_encode(text), 0, 0x40).items())
        return tuple(smpp_part(gsm_encode(text), 0).items())
    params = cimd2_part(b"", 0, udh(single=HINDI) if national else b"")[:-1]
    return (*params, (P.USER_DATA, septets_to_cimd(gsm_encode(text))))


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_a_copy_stored_by_0_2_25_with_the_line_is_the_sms_delivered_again(
    tmp_path: Path, protocol: str
) -> None:
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(binary_config(tmp_path, protocol, relay)) as gw:
        core = gw.daemon.simulator.core
        await gw.until(lambda: core._pick(protocol) is not None)
        session = core._pick(protocol)
        conn = gw.store.db.conn
        await session.send_part(part(protocol, "first", national=False))
        await sink.wait(1)
        national = part(protocol, TEXT, national=True)
        stamp = dict(national).get(P.SCTS)  # CIMD2's 060, kept as the SMSC wrote it; SMPP has none

        # The copy 0.2.25 stored and mailed, its acknowledgement never confirmed (it crashed after).
        def stored_by_0_2_25() -> None:
            conn.execute(
                "INSERT INTO mo (link, source, destination, text, data_coding, state, received_at,"
                " smsc_time) SELECT link, source, destination, ?, 0, 'fallback', received_at, ? FROM mo",
                (AS_0_2_25, stamp),
            )

        await gw.store.write(stored_by_0_2_25)
        await session.send_part(national)
        await session.send_part(part(protocol, "after", national=False))
        await sink.wait(2)
        assert [body_of(parsed(m[2])).split("\n")[0] for m in sink.messages] == ["first", "after"]
        assert all(m[1] == [FALLBACK] for m in sink.messages)
        rows = conn.execute("SELECT text, state, note FROM mo ORDER BY id").fetchall()
        assert [r[:2] for r in rows] == [
            ("first", "fallback"),
            (AS_0_2_25, "fallback"),
            (TEXT, "duplicate"),
            ("after", "fallback"),
        ]
        assert rows[2][2] == "the SMSC delivered the same SMS again (MO 2)"


async def test_a_new_sms_of_the_same_text_after_a_confirmed_copy_is_mailed(tmp_path: Path) -> None:
    """The line matches only a copy the SMSC may deliver again: one whose acknowledgement it read
    long before is a new SMS of the same text, mailed as such."""
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(binary_config(tmp_path, "smpp", relay)) as gw:
        core = gw.daemon.simulator.core
        await gw.until(lambda: core._pick("smpp") is not None)
        session = core._pick("smpp")
        conn = gw.store.db.conn
        await session.send_part(part("smpp", "first", national=False))
        await sink.wait(1)

        def acked_long_ago() -> None:
            conn.execute(
                "INSERT INTO mo (link, source, destination, text, data_coding, state, received_at, acked_at)"
                " SELECT link, source, destination, ?, 0, 'fallback', received_at - 60, received_at - 60"
                " FROM mo",
                (AS_0_2_25,),
            )

        await gw.store.write(acked_long_ago)
        await session.send_part(part("smpp", TEXT, national=True))
        await sink.wait(2)
        body = body_of(parsed(sink.messages[1][2]))
        assert body.startswith(f"{TEXT}\n\n[") and body.count(NOTE) == 1
