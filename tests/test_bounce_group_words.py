"""The first line of one bounce for several numbers of a mail (`gateway.bouncewords`).

A mail to three numbers that all failed got a bounce saying, in Polish, that the SMS could not be
delivered to "some of the numbers" ("część numerów"); it now says none of them was, in either
language, and "some" only when a number of the mail is not in the bounce.

Real peers: a real SMTP client, the daemon in this process, the simulator over SMPP refusing the
numbers at submit or delivering them, a real SMTP server taking the bounce, a real SQLite file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.wording import Language
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import FakeSMSC
from tests.test_bounce_group import DELIVERED, bounces, human

REFUSED = [f"6011{i:03d}77@{DOMAIN}" for i in range(3)]  # refused at submit (invalid destination)
NONE_DELIVERED = {
    "en": "Your SMS could not be delivered to any of the 3 numbers your mail was sent to;",
    "pl": "Nie udało się dostarczyć SMS-a pod żaden z numerów, na które wysłano wiadomość"
    " (liczba numerów: 3);",
}
SOME_DELIVERED = {
    "en": "Your SMS could not be delivered to 3 of the numbers your mail was sent to;",
    "pl": "Nie udało się dostarczyć SMS-a pod część numerów, na które wysłano wiadomość (liczba numerów: 3);",
}


async def first_line(tmp_path: Path, to: list[str], lang: Language) -> str:
    sink_port = free_port()
    async with FakeSMSC(reject_suffixes=["77"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port, language=lang)
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(to, "Closed today", subject="Notice"))).error is None
            await sink.wait(1, timeout=30)
    [report] = bounces(sink)
    return human(report).splitlines()[0]


@pytest.mark.parametrize("lang", ["en", "pl"])
async def test_a_bounce_naming_every_number_of_its_mail_says_none_was_delivered(
    tmp_path: Path, lang: Language
) -> None:
    assert (await first_line(tmp_path, REFUSED, lang)).startswith(NONE_DELIVERED[lang])


@pytest.mark.parametrize("lang", ["en", "pl"])
async def test_a_bounce_naming_some_numbers_of_its_mail_says_so(tmp_path: Path, lang: Language) -> None:
    assert (await first_line(tmp_path, [*REFUSED, DELIVERED], lang)).startswith(SOME_DELIVERED[lang])
