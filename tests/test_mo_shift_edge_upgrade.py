"""An ESC cut between two parts of a long MO under the Portuguese tables, one part stored by 0.2.25 and
the other after the upgrade, is read as its letter.

A part read with a national locking table now says so at its start, and one whose UDH names a national
table but was read with the default locking table says that; 0.2.25 stored neither, and read the part
after an ESC through the ESC's language's locking table first. A part it stored, met at the join by
one stored after the upgrade, was read through the default table alone: ESC 0x12 ("Φ") came as "ª",
nine codes in all. The join as the store runs it; then a whole SMS on a real SQLite file, its second
part left by 0.2.25 and its first delivered by the built-in simulator over SMPP, mailed to a real
SMTP sink.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import reassembly
from smsc.decoding import decode_user_data
from smsc.gsmalphabet import gsm_encode
from smsc.gsmshifts import SINGLE, Shifts, decode
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_mo_alphabet_not_read import ESC, PORTUGUESE, udh
from tests.test_mo_binary import FALLBACK, binary_config, body_of, smpp_part
from tests.test_two_way import parsed

# The codes the Portuguese single shift table gives a character after an ESC.
CODES = [c for c in SINGLE[PORTUGUESE] if c != ESC]


def read(data: bytes, seq: int, *, locking: int | None) -> str:
    """A part of two as the link reads it now: septets after a UDH naming the Portuguese single shift
    table, and `locking`'s table."""
    text, _ = decode_user_data(udh(single=PORTUGUESE, locking=locking, part=(seq, 2)) + data, 0, udhi=True)
    return text


def as_0_2_25(data: bytes, *, locking: int | None) -> str:
    """A part as 0.2.25 stored it: read with the tables its UDH names, with no marker of them."""
    return decode(data, Shifts(locking=locking or 0, single=PORTUGUESE))


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("locking", [PORTUGUESE, None])
def test_a_part_stored_before_the_upgrade_is_read_as_0_2_25_read_it(code: int, locking: int | None) -> None:
    """Under the default locking table too: the parts read after the upgrade say which table."""
    one = read(gsm_encode("ab") + bytes((ESC,)), 1, locking=locking)
    letter = SINGLE[PORTUGUESE][code]
    # Both parts read after the upgrade: each by the table it was read with.
    two = read(bytes((code,)) + gsm_encode("cd"), 2, locking=locking)
    assert reassembly.join([(1, one), (2, two)], 2) == f"ab{letter}cd"
    if locking == PORTUGUESE:
        # The second stored by 0.2.25, with the Portuguese locking table: the letter all the same.
        # (Under the default one 0.2.25 read it through the Portuguese table too, nothing in its part
        # telling otherwise: as 0.2.25 read it, the best that can be made of it.)
        old = as_0_2_25(bytes((code,)) + gsm_encode("cd"), locking=locking)
        assert reassembly.join([(1, one), (2, old)], 2) == f"ab{letter}cd"


async def test_a_long_sms_half_stored_by_0_2_25_is_mailed_with_its_letter(tmp_path: Path) -> None:
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(binary_config(tmp_path, "smpp", relay)) as gw:
        core = gw.daemon.simulator.core
        await gw.until(lambda: core._pick("smpp") is not None)
        session = core._pick("smpp")
        conn = gw.store.db.conn
        await session.send_part(tuple(smpp_part(gsm_encode("first"), 0).items()))
        await sink.wait(1)

        # Part 2 of 2 (ESC 0x12 continued: "Φ"), received by 0.2.25 before the upgrade, waiting.
        def stored_by_0_2_25() -> None:
            conn.execute(
                "INSERT INTO mo (link, source, destination, text, data_coding, concat_ref, concat_total,"
                " concat_seq, state, received_at) SELECT link, source, destination, ?, 0, 0x42, 2, 2,"
                " 'segment', received_at FROM mo",
                (as_0_2_25(bytes((0x12,)) + gsm_encode(" dia"), locking=PORTUGUESE),),
            )

        await gw.store.write(stored_by_0_2_25)
        one = udh(single=PORTUGUESE, locking=PORTUGUESE, part=(1, 2)) + gsm_encode("Ol") + bytes((ESC,))
        await session.send_part(tuple(smpp_part(one, 0, 0x40).items()))
        await sink.wait(2)
        assert sink.messages[1][1] == [FALLBACK]
        assert body_of(parsed(sink.messages[1][2])).startswith("OlΦ dia\n")
