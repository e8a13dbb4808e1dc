"""SMPP links to SMSCs that read data_coding 0 as Latin-1 (`dc0_charset = "latin1"`, Kannel's
alt-charset): what goes on the wire for our SMS and how a phone's SMS in data_coding 0 is read,
against the fake SMSC over TCP. The GSM reading, the default, is checked beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsc.base import Outcome
from smsc.gsmalphabet import gsm_encode
from smsc.smpp.codec import DELIVER_SM, encode_sm
from tests.conftest import mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_policy import to
from tests.test_smsc_link_defects import smpp_link, sms

TEXT = "@ café {x} €Δ"


@pytest.mark.parametrize(
    ("charset", "wire"),
    [("latin1", "@ café {x} ??".encode("latin-1")), ("gsm", gsm_encode(TEXT))],
)
async def test_our_sms_is_written_in_the_links_reading_of_data_coding_0(charset: str, wire: bytes) -> None:
    # An SMSC reading Latin-1 took GSM's "@" (0x00) for a NUL and cut the SMS there, and showed
    # "é" (GSM 0x05) as a control character.
    async with HappySMSC() as smsc, smpp_link(smsc.port, dc0_charset=charset) as (link, _):
        result = await link.submit(sms(TEXT))
        assert result.outcome is Outcome.ACCEPTED
        [got] = await smsc.wait_for(1)
        assert (got.data_coding, got.payload) == (0, wire)


@pytest.mark.parametrize(("charset", "text"), [("latin1", "@ café!"), ("gsm", "¡ café!")])
async def test_a_phones_sms_in_data_coding_0_is_read_as_the_link_says(charset: str, text: str) -> None:
    # The same bytes: Latin-1 "@ café!"; in GSM 03.38, 0x40 is "¡".
    async with HappySMSC() as smsc, smpp_link(smsc.port, dc0_charset=charset) as (_, ev):
        smsc.send_raw(encode_sm(DELIVER_SM, 9, source_addr_ton=1, source_addr="48601123456",
                                destination_addr="48100200300", data_coding=0,
                                short_message="@ café!".encode("latin-1")))  # fmt: skip
        await ev.wait_until(lambda: bool(ev.delivered))
        assert ev.delivered[0].text == text


async def test_text_with_what_latin1_lacks_goes_ucs2_by_a_latin1_link(tmp_path: Path) -> None:
    # "Koszt 5€" reached the phone as "Koszt 5?" (€ and the Greek capitals, GSM characters Latin-1
    # lacks, were written as "?") and the sender's confirmation said "GSM 03.38": nothing said it.
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, smsc_extra='dc0_charset = "latin1"')
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(to("601123456"), "Koszt 5€, ΔT=3"))).error is None
            assert (await gw.send(mail(to("601123457"), "Koszt 5 EUR @ café"))).error is None
            got = {m.destination[-9:]: m for m in await smsc.wait_for(2)}
    euro, plain = got["601123456"], got["601123457"]
    assert (euro.data_coding, euro.payload.decode("utf-16-be")) == (8, "Koszt 5€, ΔT=3")
    assert (plain.data_coding, plain.payload) == (0, "Koszt 5 EUR @ café".encode("latin-1"))
