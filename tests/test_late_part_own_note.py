"""The late part of a long answer carries its own note, and no "did not arrive" for the parts mailed
before it (R-3.4).

The phone sends part 1 of 2; the timeout mails it. Part 2 comes later, its header naming a national
shift table the gateway has not (an Indian one). Mailed to the user, the late part lost the note every
such mail carries ("national alphabet not supported"); mailed to the fallback (its user removed
meanwhile), its note said "Part 1 of 2 of this SMS did not arrive" after the late part's own note,
though part 1 had been mailed before it.

A real daemon with its built-in SMSC simulator over SMPP, real SMTP in, a real relay sink out, the
daemon's own housekeeping joining the parts on an injected clock, the SQLite file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.reassembly import TIMEOUT_SECONDS
from smsc.simulator.smpp_texts import address_fields
from tests.answer_world import PHONE, World, world
from tests.conftest import STAFF
from tests.test_own_numbers import FALLBACK

ALPHABET = "national alphabet not supported"
LATE = "that came late; the parts marked missing are those mailed then"
MISSING = "did not arrive"


async def late_part(w: World, ref: int) -> None:
    """Part 2 of 2 of the phone's SMS under `ref`, its header naming the Bengali single shift table."""
    core = w.gw.daemon.simulator.core
    udh = bytes((8, 0, 3, ref, 2, 2, 0x24, 1, 4))  # concatenation, then national single shift 4
    fields = dict(address_fields(PHONE, w.ours), esm_class=0x40, data_coding=0)
    await core._pick("smpp").send_part(tuple(dict(fields, short_message=udh + b"late words").items()))


@pytest.mark.parametrize("to", ["user", "fallback"])
async def test_a_late_part_says_its_alphabet_and_not_that_the_mailed_parts_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, to: str
) -> None:
    async with world(tmp_path, monkeypatch) as w:
        await w.texts("Umowa 77 do podpisu", "Umowa 77", "<first@acme.example>")
        w.now[0] += 60
        await w.part(1, ref=0x23)
        await w.gw.until(lambda: w.segments() == 1)
        w.now[0] += TIMEOUT_SECONDS + 1
        await w.gw.until(lambda: len(w.answers()) == 1)
        assert w.answers()[0][0] == [STAFF]

        if to == "fallback":
            await w.gw.store.write(lambda: w.gw.store.accounts.remove_user(STAFF))
        w.now[0] += 60
        await late_part(w, 0x23)
        await w.gw.until(lambda: w.segments() == 1)
        w.now[0] += TIMEOUT_SECONDS + 1
        await w.gw.until(lambda: len(w.answers()) == 2)
        rcpts, mail = w.answers()[1]
        body = mail.get_body(("plain",)).get_content()
        assert "late words" in body, body
        assert rcpts == ([STAFF] if to == "user" else [FALLBACK]), body
        assert LATE in body and ALPHABET in body, body
        assert MISSING not in body, body
        state, note, _, follows = w.last_mo()
        assert follows is not None and state == ("mailed" if to == "user" else "fallback"), note
        assert MISSING not in (note or ""), note


async def test_a_late_part_says_which_part_never_came_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Part 1 of 3 is mailed by the timeout, part 2 comes late, part 3 never: the late part's mail
    said only that the parts marked missing were mailed then, though part 3 never was."""
    async with world(tmp_path, monkeypatch) as w:
        await w.texts("Umowa 77 do podpisu", "Umowa 77", "<first@acme.example>")
        core = w.gw.daemon.simulator.core

        async def part(seq: int, text: bytes) -> None:
            udh = bytes((5, 0, 3, 0x44, 3, seq))  # part `seq` of 3 under one reference
            fields = dict(
                address_fields(PHONE, w.ours), esm_class=0x40, data_coding=0, short_message=udh + text
            )
            await core._pick("smpp").send_part(tuple(fields.items()))

        for seq, words, count in ((1, b"first words ", 1), (2, b"middle words ", 2)):
            w.now[0] += 60
            await part(seq, words)
            await w.gw.until(lambda: w.segments() == 1)
            w.now[0] += TIMEOUT_SECONDS + 1
            await w.gw.until(lambda n=count: len(w.answers()) == n)
        body = w.answers()[1][1].get_body(("plain",)).get_content()
        assert "middle words" in body and LATE in body, body
        assert "Part 3 of 3 of this SMS did not arrive" in body, body
        assert "Part 1" not in body and "Parts 1" not in body, body  # mailed before it
        state, note, _, follows = w.last_mo()
        assert follows is not None and state == "mailed", note
        assert "Part 3 of 3 of this SMS did not arrive" in (note or ""), note
