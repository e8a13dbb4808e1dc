"""The parts of one long answer are joined though the SMSC wrote our number differently on each (R-3.4).

An SMSC gave one part of a phone's long answer to "48100200300" and the other to "100200300" (our
+48100200300 nationally). The sets were keyed by the number with only "+" and "00" taken off, so
the two halves waited apart and were each mailed, with gap markers, a reassembly timeout later. The
key now reads our number as the handlers do: the numbers this phone had SMS from, and national forms
of them. Real peers: SMTP into the daemon, the built-in simulator's SMPP session delivering each
part, the answer mail at a real SMTP sink.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smsc.simulator.smpp_texts import address_fields, mo_parts
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_own_numbers import PHONE, own_config
from tests.test_two_way import parsed

ANSWER = "Tak, będę jutro o dziesiątej, ale proszę przygotować dokumenty do podpisu i klucze do biura."


@pytest.mark.parametrize("forms", [("48100200300", "100200300"), ("100200300", "0048100200300")])
async def test_the_parts_of_an_answer_to_our_number_in_two_forms_are_one_sms(
    tmp_path: Path, forms: tuple[str, str]
) -> None:
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(own_config(tmp_path, "smpp", relay)) as gw:
        core = gw.daemon.simulator.core
        sms = mail(f"601222222@{DOMAIN}", body="Czy jutro o 10?", subject="Spotkanie")
        assert (await gw.send(sms)).error is None
        await gw.until(lambda: len(core.records) == 1)
        session = core._pick("smpp")
        assert session is not None
        parts = mo_parts(ANSWER, ref=9)
        assert len(parts) == 2
        for destination, (esm, dc, sm) in zip(forms, parts, strict=True):
            fields = dict(address_fields(PHONE, destination), dest_addr_ton=0, esm_class=esm, data_coding=dc)
            await session.send_part(tuple(dict(fields, short_message=sm).items()))
        await sink.wait(1)
        _, rcpts, raw = sink.messages[0]
        assert rcpts == [STAFF]
        assert parsed(raw).get_content().startswith(ANSWER.rstrip() + "\n")
        rows = gw.store.db.conn.execute("SELECT destination, state FROM mo ORDER BY id").fetchall()
        assert [state for _, state in rows] == ["joined", "joined", "mailed"], rows
        assert {d for d, _ in rows[:2]} == set(forms)
