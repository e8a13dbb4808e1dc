"""A long UCS-2 MO that a phone cut at an odd octet (a 7-octet UDH with a 16-bit reference leaves 133
octets for the first segment): each segment was read alone, so every character after the cut was read
a byte off and the mail was garbage from there. The segments' octets are joined before they are read
now: the whole text, an odd octet left over costing one U+FFFD.
A fake SMPP SMSC over TCP writing the two deliver_sm, and the running gateway mailing the fallback."""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from smsc.smpp.codec import DELIVER_SM, encode_sm
from tests.conftest import config_text, free_port, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_two_way import parsed

OPS = "ops@gw.example"
SENDER = "+48100200300"  # the acme account's sender in tests.conftest
TEXT = (
    "Zażółć gęślą jaźń, proszę o kontakt jutro rano w sprawie umowy numer 12/2026, pozdrawiam"
    " serdecznie, Jan Kowalski z działu sprzedaży"
)


def segment(seq: int, n: int, total: int, octets: bytes) -> bytes:
    udh = bytes([6, 8, 4, 0x12, 0x34, total, n])  # 16-bit reference 0x1234
    return encode_sm(DELIVER_SM, seq, source_addr_ton=1, source_addr="48601100002", destination_addr=SENDER,
                     esm_class=0x40, data_coding=8, short_message=udh + octets)  # fmt: skip


async def test_a_long_ucs2_mo_cut_at_an_odd_octet_is_mailed_whole(tmp_path: Path) -> None:
    octets = TEXT.encode("utf-16-be")
    relay = free_port()
    async with HappySMSC() as smsc, smtp_sink(relay) as sink:
        extra = f'\n[replies]\nfallback_address = "{OPS}"\n'
        text = config_text(tmp_path, smsc_port=smsc.port, relay_port=relay, extra=extra)
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)):
            await smsc.wait_until(lambda: bool(smsc.sessions), timeout=20)
            # Then a text of 67 octets in 2 segments (7 + 60): its last octet has no other half.
            smsc.send_raw(segment(21, 1, 2, octets[:133]) + segment(22, 2, 2, octets[133:]))
            smsc.send_raw(segment(23, 1, 2, octets[:7]).replace(b"\x12\x34", b"\x12\x35")
                          + segment(24, 2, 2, octets[7:67]).replace(b"\x12\x34", b"\x12\x35"))  # fmt: skip
            await sink.wait(2)
    bodies = sorted(parsed(raw).get_content().split("\n")[0] for _, _, raw in sink.messages)
    assert bodies == sorted([TEXT, TEXT[:33] + "\ufffd"]), bodies
