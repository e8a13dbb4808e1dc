"""Which numbers are served ([gateway] number_types): phones, not premium-rate, toll-free or satellite
numbers, though the numbering plan knows them all. Refused at RCPT with the kind named; the mail's
other recipients still go. A real SMTP client against the real listener and a fake SMSC over TCP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from gateway.smtp.addressing import number_kind
from tests.conftest import DOMAIN, config_text, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("+48601123456", "MOBILE"),
        ("+48221234567", "FIXED_LINE"),
        ("+12015550123", "FIXED_LINE_OR_MOBILE"),
        ("+48701234567", "PREMIUM_RATE"),
        ("+48800123456", "TOLL_FREE"),
        ("+979123456789", "PREMIUM_RATE"),  # international premium rate
        ("+870773112345", "GLOBAL"),  # Inmarsat: phonenumbers says MOBILE
        ("+881612345678", "GLOBAL"),  # satellite phones: MOBILE too
        ("+80012345678", "TOLL_FREE"),  # international freephone
    ],
)
def test_the_kind_of_a_number(number: str, kind: str) -> None:
    assert number_kind(number) == kind


REFUSED = {
    "701234567": b"5.1.1 <701234567@sms.example.com>: +48701234567: premium-rate numbers are not served",
    "800123456": b"5.1.1 <800123456@sms.example.com>: +48800123456: toll-free numbers are not served",
    "+870773112345": b"5.1.1 <+870773112345@sms.example.com>: +870773112345: satellite and"
    b" international-network numbers are not served",
    "+979123456789": b"5.1.1 <+979123456789@sms.example.com>: +979123456789: premium-rate numbers are"
    b" not served",
}


async def test_premium_rate_toll_free_and_satellite_numbers_are_refused_at_rcpt(tmp_path: Path) -> None:
    # Each was taken and sent like a mobile: an SMS to +48 701… or +870… costs many times one.
    rcpts = [to("601123456"), to("221234567"), *(to(n) for n in REFUSED)]
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(mail(rcpts, "Hi all"), rcpts)
        assert res.error is None
        refused = {address.partition("@")[0]: answer for address, answer in res.refused.items()}
        assert set(refused) == set(REFUSED)
        for number, (code, text) in refused.items():
            assert code == 550 and text.startswith(REFUSED[number]), text
        await smsc.wait_for(2)
        await gw.until(lambda: gw.states() == ["delivered", "delivered"])
        assert sorted(s.destination.lstrip("+") for s in smsc.received) == ["48221234567", "48601123456"]


async def test_the_kinds_served_are_the_configs(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, smsc_port=2775, number_types=[" mobile", "PREMIUM_RATE", "MOBILE"])
    assert cfg.gateway.number_types == ["MOBILE", "PREMIUM_RATE"]
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, number_types=["MOBILE", "PREMIUM_RATE"])
        async with running_gateway(cfg) as gw:
            rcpts = [to("701234567"), to("221234567")]
            res = await gw.send(mail(rcpts, "Hi"), rcpts)
            assert res.error is None and list(res.refused) == [to("221234567")]
            assert res.refused[to("221234567")][1].endswith(
                b"fixed-line numbers are not served by this gateway"
            )
            await smsc.wait_for(1)
            assert smsc.received[0].destination.lstrip("+") == "48701234567"


def test_an_unknown_kind_is_refused_naming_the_key(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=2775, number_types=["MOBILE", "SATELLITE"])
    with pytest.raises(ConfigError, match=r"\[gateway\] number_types: .*unknown number type 'SATELLITE'"):
        parse_config(text, source="config.toml", base_dir=tmp_path)
