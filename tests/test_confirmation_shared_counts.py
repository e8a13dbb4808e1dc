"""A confirmation line shared by several numbers says what each one costs and what the line costs.

Numbers whose SMS are alike share a line (R-1.9), and the line gave the count of one number:
"+48…01, +48…13, +48…00: 4 SMS part(s)" read as 4 parts where the mail cost 12. Over real SMTP with
an SMSC over TCP; the confirmation read at a real SMTP sink, in English and in Polish.
"""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.confirmwords import accepted_line
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC

NUMBERS = ["601400001", "601400013", "601400000"]
BODY = "Zażółć gęślą jaźń. " * 12  # UCS-2 (ż and the rest), 228 characters: 4 parts to each number


async def _confirmation(tmp_path: Path, recipients: list[str], **gateway: str) -> list[str]:
    """The lines of the confirmation of one mail to `recipients`, one line a group of numbers."""
    sink_port = free_port()
    rcpts = [f"{n}@{DOMAIN}" for n in recipients]
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port, **gateway)
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", confirm=True))
            assert (await gw.send(mail(rcpts, BODY, "Spotkanie"), rcpts)).error is None
            await sink.wait(1)
    msg = email.message_from_bytes(sink.messages[0][2], policy=policy.default)
    assert isinstance(msg, EmailMessage)
    body = msg.get_body()
    assert body is not None
    text = str(body.get_content()).replace("\r\n", "\n")
    return [line for line in text.splitlines() if line.startswith("  +48")]


async def test_three_numbers_on_a_line_say_each_and_in_all(tmp_path: Path) -> None:
    lines = await _confirmation(tmp_path, NUMBERS)
    numbers = ", ".join(f"+48{n}" for n in NUMBERS)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"  {numbers}: 4 SMS parts each (12 in all), UCS-2 ("), lines


async def test_three_numbers_on_a_line_say_each_and_in_all_in_polish(tmp_path: Path) -> None:
    lines = await _confirmation(tmp_path, NUMBERS, language="pl")
    numbers = ", ".join(f"+48{n}" for n in NUMBERS)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"  {numbers}: po 4 części SMS-a (razem 12), UCS-2 (z powodu znaków: "), lines


async def test_one_number_keeps_its_own_count(tmp_path: Path) -> None:
    (line,) = await _confirmation(tmp_path, NUMBERS[:1])
    assert line.startswith(f"  +48{NUMBERS[0]}: 4 SMS part(s), UCS-2"), line


@pytest.mark.parametrize(
    ("parts", "numbers", "en", "pl"),
    [
        (1, 2, "1 SMS part each (2 in all)", "po 1 części SMS-a (razem 2)"),
        (2, 3, "2 SMS parts each (6 in all)", "po 2 części SMS-a (razem 6)"),
        (10, 150, "10 SMS parts each (1500 in all)", "po 10 części SMS-a (razem 1 500)"),
    ],
)
def test_the_counts_as_each_language_writes_them(parts: int, numbers: int, en: str, pl: str) -> None:
    """English says part or parts; Polish "po N części" in every count, its total grouped by thousands
    as `gateway.polish` writes counts."""
    group = [f"+4860140{i:04d}" for i in range(numbers)]
    assert accepted_line("en", group, parts, "GSM 03.38").endswith(f": {en}, GSM 03.38")
    assert accepted_line("pl", group, parts, "GSM 03.38").endswith(f": {pl}, GSM 03.38")
