"""A phone written nationally under TON 1 (international), as some SMSCs write it: `015112345678` in
Germany, `0601700101` in Poland (which dials no trunk 0). No country code starts with 0, so such
digits are the region's national number; read as "+0…" they were no phone: the phone's STOP opted
nobody out and its answers matched no conversation. A real daemon over SMPP (a fake SMSC sending the
raw deliver_sm), the SQLite file; and the number rule itself for each TON.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.conversations.numbers import normalise
from smsc.smpp.codec import DELIVER_SM, encode_sm
from tests.conftest import make_config, running_gateway
from tests.fakes.smsc import HeldSMSC


@pytest.mark.parametrize(
    ("region", "written", "ton", "e164"),
    [
        ("DE", "015112345678", "1", "+4915112345678"),
        ("PL", "0601700101", "1", "+48601700101"),
        ("PL", "0601700101", None, "+48601700101"),
        ("PL", "48601700101", "1", "+48601700101"),
        ("PL", "601700101", "0", "+48601700101"),
    ],
)
def test_a_national_number_under_the_wrong_ton_is_read_as_national(
    region: str, written: str, ton: str | None, e164: str
) -> None:
    assert normalise(written, region, ton) == e164


@pytest.mark.parametrize(("region", "written", "e164"), [("DE", "015112345678", "+4915112345678")])
async def test_a_stop_from_a_trunk_zero_number_under_ton_1_opts_the_phone_out(
    tmp_path: Path, region: str, written: str, e164: str
) -> None:
    async with HeldSMSC(message_id_format=lambda _id: "4713") as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, default_region=region)
        async with running_gateway(cfg) as gw:
            await smsc.wait_until(lambda: len(smsc.sessions) > 0)
            pdu = encode_sm(
                DELIVER_SM, 9, esm_class=0, source_addr_ton=1, source_addr=written,
                dest_addr_ton=1, destination_addr="48100200300", short_message=b"STOP",
            )  # fmt: skip
            smsc.send_raw(pdu)

            def rows() -> list[tuple[str, str, str]]:
                return list(gw.store.db.conn.execute("SELECT source, text, state FROM mo"))

            await gw.until(lambda: bool(rows()) and rows()[0][2] != "new")
            assert gw.store.policy.is_opted_out(e164)
            assert rows()[0][0] == e164
