"""The number in a recipient address as a mail client writes it (R-1.1), judged at RCPT over real SMTP.

A client keeps a local part with spaces only inside quotes (`"601 123 456"@domain`), so the quotes
are part of what the gateway reads; the number must still be the same E.164 one as for the plain
forms, and the answer must come back from `<number>@domain`, which the user can answer again.
"""

from __future__ import annotations

import email
import smtplib
from email import policy
from pathlib import Path

import pytest

from gateway.smtp.addressing import BadNumber, split_address
from tests.conftest import DOMAIN, STAFF, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_session_limits import blocking

PHONE = "+48601123456"
SENDER = "+48100200300"

ACCEPTED = [
    f'"601 123 456"@{DOMAIN}',
    f'"+48 601 123 456"@{DOMAIN}',
    f'"601-123-456"@{DOMAIN}',
    f'"601.123.456"@{DOMAIN}',
    f"48601123456@{DOMAIN}",
    f"+48.601.123.456@{DOMAIN}",
    f"0048601123456@{DOMAIN}",
    f"601-123-456@{DOMAIN}",
]
# 601-123-456 is taken, so "only digits and an optional leading +" was not the rule.
ONLY_DIGITS = (
    "a phone number only: digits (spaces, dashes, dots, slashes or brackets between them), + or 00 first"
)
REFUSED = [
    (f'"601 12x 456"@{DOMAIN}', "550 5.1.1", ONLY_DIGITS),
    (f'"anna smith"@{DOMAIN}', "550 5.1.1", ONLY_DIGITS),
    (f"jan.kowalski@{DOMAIN}", "550 5.1.1", ONLY_DIGITS),
    (f'"601 123 456 789 012 345 678"@{DOMAIN}', "550 5.1.1", "too long: at most 17 digits"),
    (f"12@{DOMAIN}", "550 5.1.1", "too short: at least 3 digits"),  # was "only digits … allowed"
    # A digit short of a mobile number: "no such number" alone sent staff looking for a wrong digit.
    (f"60112345@{DOMAIN}", "550 5.1.1", "numbering plan of PL (+48): its mobile numbers have 9 digits"),
    (f"+4860112@{DOMAIN}", "550 5.1.1", "too short for a phone number of PL (+48): a digit missing?"),
    (f"900123456@{DOMAIN}", "550 5.1.1", "no such number in the numbering plan"),
    (f"+8001234@{DOMAIN}", "550 5.1.1", "no such number in the numbering plan"),  # not "of 001 (+800)"
    (f'""@{DOMAIN}', "550 5.1.1", "empty number"),
    ('"601 123 456"@elsewhere.example', "550 5.7.1", "Relay access denied"),
]


def rcpt_replies(port: int, addresses: list[str]) -> list[str]:
    """Each address in its own transaction, so that one verdict cannot hang on another's."""
    out = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
        c.ehlo("client.test")
        for address in addresses:
            assert c.mail(STAFF)[0] == 250
            code, text = c.rcpt(address)
            out.append(f"{code} {text.decode()}")
            c.rset()
    return out


async def test_numbers_in_every_form_a_client_writes_are_accepted_at_rcpt(tmp_path: Path) -> None:
    async with running_gateway(make_config(tmp_path, smsc_port=1)) as gw:
        answers = await blocking(lambda: rcpt_replies(gw.port, ACCEPTED))
    assert answers == ["250 2.1.5 Recipient OK"] * len(ACCEPTED), list(zip(ACCEPTED, answers, strict=True))


async def test_anything_else_is_refused_at_rcpt_saying_why(tmp_path: Path) -> None:
    async with running_gateway(make_config(tmp_path, smsc_port=1)) as gw:
        answers = await blocking(lambda: rcpt_replies(gw.port, [a for a, _, _ in REFUSED]))
    for (address, code, why), answer in zip(REFUSED, answers, strict=True):
        assert answer.startswith(code) and why in answer, (address, answer)


async def test_a_quoted_number_with_spaces_is_sent_and_answered_from_its_e164_address(tmp_path: Path) -> None:
    relay = free_port()
    async with HappySMSC() as smsc, smtp_sink(relay) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=relay)
        async with running_gateway(cfg) as gw:
            rcpt = f'"601 123 456"@{DOMAIN}'
            msg = mail(rcpt, "Czy 10:00 pasuje?", subject="Spotkanie", Message_ID="<q1@acme.example>")
            res = await gw.send(msg, [rcpt])
            assert res.error is None and res.refused == {}
            sent = await smsc.wait_for(1)
            assert sent[0].destination == PHONE
            assert gw.store.db.conn.execute("SELECT recipient FROM messages").fetchall() == [(PHONE,)]
            assert await smsc.inject_mo(PHONE, SENDER, "Tak") >= 1
            await sink.wait(1)
            _, rcpts, raw = sink.messages[0]
            answer = email.message_from_bytes(raw, policy=policy.default)
            assert rcpts == [STAFF]
            assert answer["From"].addresses[0].addr_spec == f"+48601123456@{DOMAIN}"
            assert answer["In-Reply-To"] == "<q1@acme.example>"
            # The digits-only address earlier answer mails came from still reaches the same phone.
            again = mail(f"48601123456@{DOMAIN}", "Świetnie")
            assert (await gw.send(again)).error is None
            sent = await smsc.wait_for(2)
            assert sent[1].destination == PHONE


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ('"601 123 456"@sms.example.com', "601 123 456"),
        ('"a\\"b"@sms.example.com', 'a"b'),
        ('"x@y"@sms.example.com', "x@y"),
        ("601123456@SMS.example.com.", "601123456"),
        ('"info"@sms.example.com', "info"),
        ('""@sms.example.com', ""),
    ],
)
def test_split_address_reads_a_quoted_local_part_without_its_quotes(address: str, local: str) -> None:
    assert split_address(address)[0] == local


@pytest.mark.parametrize("address", ["@sms.example.com", "no-at-sign"])
def test_split_address_refuses_an_address_without_a_local_part(address: str) -> None:
    with pytest.raises(BadNumber):
        split_address(address)
