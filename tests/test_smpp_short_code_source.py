"""A numeric short code sender (a premium number such as 7155) on an SMPP link, and one bound for a
short code shared by the sender's stored form and the SMPP source address.

`source_ton`/`source_npi` set to 1/1 for the link's phone numbers sent the short code 7155 as the
international number 7155 (submit_sm TON 1 NPI 1): refused by the SMSC (ESME_RINVSRCADR) or mangled,
as the alphanumeric senders were before. The sender's form counted under 7 digits as a short code, the
SMPP link up to 8: an 8-digit short code was told "no phone number ... written with + and its country
code", and a '+' number E.164 has not was stored with no word. The daemon against an SMPP SMSC over
TCP; check-config and the account commands as processes.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_check_config_sender_prefix import cimd2_config, with_database
from tests.test_config_checks import smsgw, write
from tests.test_smpp_source_ton import TON_1


async def sent_source(tmp_path: Path, extra: str, sender: str) -> tuple[str, int, int]:
    async with HappySMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port, smsc_extra=extra)
        text = text.replace('sender = "+48100200300"', f'sender = "{sender}"', 1)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "hello"))).error is None
            await smsc.wait_for(1)
        got = smsc.received[0]
        return (got.source, got.source_ton, got.source_npi)


async def test_a_short_code_goes_as_network_specific_whatever_an_international_source_ton(
    tmp_path: Path,
) -> None:
    assert await sent_source(tmp_path, TON_1, "7155") == ("7155", 3, 0)


async def test_a_short_code_takes_a_source_ton_a_short_code_can_have(tmp_path: Path) -> None:
    assert await sent_source(tmp_path, "source_ton = 0\nsource_npi = 9", "7155") == ("7155", 0, 9)


def test_check_config_says_what_the_keys_do_not_apply_to(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port(), smsc_extra=TON_1)
    short = text.replace('sender = "+48100200300"', 'sender = "7155"', 1)
    assert short != text
    res = smsgw("--config", str(write(tmp_path, short)), "check-config")
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())
    assert '[[smsc]] "main" source_ton, source_npi: apply to phone-number senders only' in said, said
    assert "a short code (up to 8 digits) as TON 3 / NPI 0" in said, said


def test_check_config_says_nothing_of_the_keys_when_every_sender_is_a_phone_number(tmp_path: Path) -> None:
    # The common 1/1 of a link whose senders are all numbers: it was said at every check and start.
    text = config_text(tmp_path, smsc_port=free_port(), smsc_extra=TON_1)
    res = smsgw("--config", str(write(tmp_path, text)), "check-config")
    assert res.returncode == 0, res.stderr
    assert "apply to phone-number senders only" not in res.stderr, res.stderr


def test_an_8_digit_short_code_is_kept_as_one_and_a_plus_number_e164_has_not_is_said(tmp_path: Path) -> None:
    config = with_database(write(tmp_path, cimd2_config(tmp_path, "+48500100")))
    assert smsgw("--config", str(config), "account", "add", "ACME").returncode == 0
    res = smsgw("--config", str(config), "account", "set", "ACME", "--sender", "71550000")
    assert res.returncode == 0, res.stderr
    assert "no phone number" not in res.stdout + res.stderr, res.stdout
    assert "71550000" in smsgw("--config", str(config), "account", "show", "ACME").stdout
    res = smsgw("--config", str(config), "account", "set", "ACME", "--sender", "+4850010020")
    assert res.returncode == 0, res.stderr
    assert "+4850010020 is no valid phone number" in " ".join(res.stdout.split()), res.stdout
