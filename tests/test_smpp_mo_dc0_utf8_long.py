"""A long MO under data_coding 0 whose SMSC passes the phone's UTF-8 on as it came, cut mid-character.

Each segment was read alone: the Polish letter cut at the edge made both halves fail UTF-8, so both
fell back to Latin-1 and the whole mail read "ZaÅ¼Ã³Å...". Such a segment's octets are kept now, as
8-bit data's are, and read once joined: the whole text. And a short Latin-2 SMS in capitals that
happens to be valid UTF-8 ("STÓŁ", D3 A3) is read as Latin-1, not as "STӣ" (`utf8_likely`).
A fake SMPP SMSC over TCP writing the deliver_sm, and the running gateway mailing the fallback."""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from smsc.smpp.codec import DELIVER_SM, encode_sm
from tests.conftest import config_text, free_port, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_two_way import parsed

OPS = "ops@gw.example"
SENDER = "+48100200300"  # the acme account's sender in tests.conftest
TEXT = "Zażółć gęślą jaźń " * 10


def deliver(seq: int, short_message: bytes, esm_class: int) -> bytes:
    return encode_sm(DELIVER_SM, seq, source_addr_ton=1, source_addr="48601100002", destination_addr=SENDER,
                     esm_class=esm_class, data_coding=0, short_message=short_message)  # fmt: skip


async def test_a_long_dc0_utf8_mo_cut_mid_character_is_mailed_whole(tmp_path: Path) -> None:
    octets = TEXT.encode("utf-8")
    assert octets[152] >= 0xC0  # the edge cuts a two-octet letter
    relay = free_port()
    async with HappySMSC() as smsc, smtp_sink(relay) as sink:
        extra = f'\n[replies]\nfallback_address = "{OPS}"\n'
        text = config_text(tmp_path, smsc_port=smsc.port, relay_port=relay, extra=extra)
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)):
            await smsc.wait_until(lambda: bool(smsc.sessions), timeout=20)
            udh = bytes([5, 0, 3, 0x47, 2])
            smsc.send_raw(
                deliver(31, udh + b"\x01" + octets[:153], 0x40)
                + deliver(32, udh + b"\x02" + octets[153:], 0x40)
            )
            await sink.wait(1)
            smsc.send_raw(deliver(33, "STÓŁ".encode("iso8859-2"), 0))
            await sink.wait(2)
    bodies = [parsed(raw).get_content().split("\n")[0] for _, _, raw in sink.messages]
    assert bodies == [TEXT, "STÓ£"], bodies
