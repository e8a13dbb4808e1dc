"""`source_ton` / `source_npi` of an `[[smsc]]` block: for number senders.

Set to 1/1 (the link's numbers international), they sent an account's alphanumeric sender 'ACME' as
an international number (submit_sm TON 1 NPI 1): SMSCs refuse that (ESME_RINVSRCADR, every SMS of the
account failed and suspended it) or mangle it, and nothing said so. A type of number SMPP has not
(9) was taken, and so were both keys on a CIMD2 link, where they do nothing. The daemon against an
SMPP SMSC over TCP; check-config as a process."""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_config_checks import smsgw, write

TON_1 = "source_ton = 1\nsource_npi = 1"


async def test_an_alphanumeric_sender_goes_as_ton_5_whatever_the_links_source_ton(tmp_path: Path) -> None:
    async with HappySMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port, smsc_extra=TON_1)
        text = text.replace('sender = "+48100200300"', 'sender = "ACME"', 1)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "hello"))).error is None
            await smsc.wait_for(1)
        got = smsc.received[0]
        assert (got.source, got.source_ton, got.source_npi) == ("ACME", 5, 0)


async def test_a_number_sender_takes_the_links_source_ton(tmp_path: Path) -> None:
    async with HappySMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port, smsc_extra="source_ton = 0\nsource_npi = 9")
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "hello"))).error is None
            await smsc.wait_for(1)
        got = smsc.received[0]
        assert (got.source, got.source_ton, got.source_npi) == ("48100200300", 0, 9)


def test_a_type_of_number_smpp_has_not_is_refused_naming_the_key(tmp_path: Path) -> None:
    for extra, said in (
        ("source_ton = 9", "source_ton: 9 is no SMPP type of number: 0 unknown, 1 international"),
        ("source_npi = 2", "source_npi: 2 is no SMPP numbering plan: one of 0, 1, 3, 4, 6, 8, 9, 10"),
    ):
        text = config_text(tmp_path, smsc_port=free_port(), smsc_extra=extra)
        res = smsgw("--config", str(write(tmp_path, text)), "check-config")
        assert res.returncode != 0 and said in res.stderr, res.stderr


def test_source_ton_on_a_cimd2_link_is_said_to_do_nothing(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port(), smsc_extra=TON_1).replace(
        'type = "smpp"', 'type = "cimd2"', 1
    )
    res = smsgw("--config", str(write(tmp_path, text)), "check-config")
    assert res.returncode == 0, res.stderr
    said = '[[smsc]] "main" source_ton, source_npi: does nothing on a type = "cimd2" link'
    assert said in res.stderr, res.stderr
