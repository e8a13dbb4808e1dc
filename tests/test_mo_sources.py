"""MOs from junk source addresses are kept but never acted on (issue 9, item 10a): a garbled
'STOP' must not put a non-number on the opt-out list. Real SMPP deliveries into the daemon.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_config, running_gateway
from tests.fakes.smsc import HappySMSC

JUNK = ["+48601123456STOP\x7f", "+" + "4" * 30, "+4860 1123456"]


def optouts(gw: object) -> list[str]:
    return [r[0] for r in gw.store.db.conn.execute("SELECT number FROM optouts ORDER BY number")]  # type: ignore[attr-defined]


@pytest.mark.parametrize("source", JUNK)
async def test_stop_from_a_junk_source_is_not_an_optout(tmp_path: Path, source: str) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await smsc.wait_until(lambda: bool(smsc.sessions))
        assert await smsc.inject_mo(source, "+48100200300", "STOP") >= 1
        # A valid STOP as well: the list must hold it and nothing else.
        assert await smsc.inject_mo("+48601999888", "+48100200300", "STOP") >= 1

        def both_recorded() -> bool:  # each MO is acted on in the transaction that records it
            return gw.store.db.conn.execute("SELECT COUNT(*) FROM mo").fetchone()[0] == 2

        await gw.until(both_recorded)  # the junk MO is kept (and acknowledged), only not acted on
        assert optouts(gw) == ["+48601999888"]


async def test_stop_from_an_international_number_written_with_00_is_an_optout(tmp_path: Path) -> None:
    # TON 1 with the "00" prefix kept (`0048601123456`, as some SMSCs send it) was read as
    # `+0048601123456`, no number: the phone's STOP was ignored and its answers missed their user.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await smsc.wait_until(lambda: bool(smsc.sessions))
        assert await smsc.inject_mo("+0048601123456", "+48100200300", "STOP") >= 1
        await gw.until(lambda: optouts(gw) == ["+48601123456"])
