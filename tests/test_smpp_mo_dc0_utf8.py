"""An MO under data_coding 0 whose octets run above 0x7F is read as UTF-8 when it reads as that.

Unpacked GSM 03.38 septets are all below 0x80: an octet above is an SMSC passing on the phone's 8-bit
text as it came. Read as Latin-1 for the octets above, UTF-8 "Zażółć gęślą jaźń" was mailed as
"ZaÅ¼Ã³ÅÄ gÄÅlÄ jaÅºÅ". Octets that are no UTF-8 are read as before (Latin-1), and septets as GSM.
A real SmppLink against the SMPP simulator's session over TCP on loopback, the PDUs written by hand.
"""

from __future__ import annotations

from smsc.simulator.smpp_texts import address_fields
from tests.fakes.smsc import HappySMSC
from tests.test_smpp_link import ME, PHONE, running_link

POLISH = "Zażółć gęślą jaźń"


async def test_dc0_octets_above_0x7f_read_as_utf8_first() -> None:
    sent = [POLISH.encode("utf-8"), "Źle".encode("iso8859-2"), b"\x00 10\x02 \x1be"]
    async with HappySMSC() as smsc, running_link(smsc.port) as (_, ev):
        [session] = smsc.sessions
        for data in sent:
            mo = dict(address_fields(PHONE, ME), esm_class=0, data_coding=0, short_message=data)
            session.send_pdu("deliver_sm", **mo)
        await ev.wait_until(lambda: len(ev.delivered) == len(sent))
    assert sorted(m.text for m in ev.delivered) == sorted([POLISH, "¬le", "@ 10$ €"])
