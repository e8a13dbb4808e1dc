"""The address an answer mail comes from, and where a Reply to it goes (SPEC R-3.1).

The answer to an SMS comes `From: <E.164 number>@<domain>` with the "+": RCPT reads bare digits as
a national number of `default_region` first, so an answer mailed from `4915112345678@` under DE sent
the user's Reply to +494915112345678, a stranger, and one from `298212345@` under PL sent it to the
Polish landline +48298212345 instead of the Faroese phone. Real peers throughout: SMTP in on either
port, the fake SMSC over TCP, the answer mail caught by a real SMTP sink and read by `email`'s parser.
Answer mails written before (from `48601123456@`) still reach their phone under PL.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Config, parse_config
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_submission import PASSWORD, blocking, secure, submission_config_text, with_password
from tests.test_submission import tls_pair as tls_pair  # the fixture, for the submission port
from tests.test_two_way import answer_to, parsed

OURS = "+48100200300"  # the account's sender, which the phone answers


def gateway_config(tmp_path: Path, *, smsc_port: int, relay: int, tls: Any, region: str) -> Config:
    """The submission port's TLS config, with the answer mails relayed to the sink and `region`."""
    text = submission_config_text(tmp_path, smsc_port, tls)
    text = text.replace("[gateway]\n", f'[gateway]\ndefault_region = "{region}"\n', 1)
    text = re.sub(r'^relay = ".*"$', f'relay = "127.0.0.1:{relay}"', text, count=1, flags=re.MULTILINE)
    return parse_config(text, source="test config", base_dir=tmp_path)


def submit(port: int, tls: Any, msg: EmailMessage, rcpt: str) -> dict[str, tuple[int, bytes]]:
    """What Outlook does on the submission port: STARTTLS, AUTH, then the mail to `rcpt`."""
    with secure(port, tls) as c:
        c.login(STAFF, PASSWORD)
        return c.send_message(msg, STAFF, [rcpt])


async def answered(gw: Any, smsc: HappySMSC, sink: Any, phone: str, text: str) -> EmailMessage:
    """The phone answers the SMS it got from our number; the mail it becomes, as the user reads it."""
    assert await smsc.inject_mo(phone, OURS, text) >= 1
    await sink.wait(1)
    _, rcpts, raw = sink.messages[-1]
    assert rcpts == [STAFF]
    return parsed(raw)


@pytest.mark.parametrize(
    ("region", "phone", "shown", "port"),
    [
        ("DE", "+4915112345678", "+49 1511 2345678", "relay"),  # was +494915112345678
        ("DE", "+4915112345678", "+49 1511 2345678", "submission"),
        ("PL", "+298212345", "+298 21 23 45", "relay"),  # Faroe: was +48298212345, a Polish landline
    ],
)
async def test_a_reply_to_an_answer_mail_reaches_the_phone_that_answered(
    tmp_path: Path, tls_pair: Any, region: str, phone: str, shown: str, port: str
) -> None:
    relay = free_port()
    async with HappySMSC() as smsc, smtp_sink(relay) as sink:
        cfg = gateway_config(tmp_path, smsc_port=smsc.port, relay=relay, tls=tls_pair, region=region)
        async with running_gateway(cfg) as gw:
            await with_password(gw)
            first = mail(
                f"{phone}@{DOMAIN}", "Passt 10 Uhr?", subject="Termin", Message_ID="<t1@acme.example>"
            )
            assert (await gw.send(first)).error is None
            assert (await smsc.wait_for(1))[0].destination == phone
            answer = await answered(gw, smsc, sink, phone, "Ja, passt")
            assert answer["In-Reply-To"] == "<t1@acme.example>"
            # The user presses Reply: the mail goes to exactly the address the answer came from.
            sender = answer["From"].addresses[0]
            again = answer_to(answer, "Gut, bis dann")
            if port == "relay":
                assert (await gw.send(again, [sender.addr_spec])).error is None
            else:
                refused = await blocking(
                    lambda: submit(gw.daemon.submission_port, tls_pair, again, sender.addr_spec)
                )
                assert refused == {}
            sent = await smsc.wait_for(2)
            assert sent[1].destination == phone
            assert "Gut, bis dann" in sent[1].text
            # the address is the E.164 number, "+" and all; the display name is as it was.
            assert (sender.display_name, sender.addr_spec) == (shown, f"{phone}@{DOMAIN}")


async def test_a_reply_to_an_answer_mail_of_the_previous_version_still_reaches_the_phone(
    tmp_path: Path, tls_pair: Any
) -> None:
    # Answer mails already in mailboxes come from `48601123456@`: under PL its digits read as the
    # same phone, and the Reply still answers the conversation (its "Re: …" subject is not sent).
    relay = free_port()
    async with HappySMSC() as smsc, smtp_sink(relay) as sink:
        cfg = gateway_config(tmp_path, smsc_port=smsc.port, relay=relay, tls=tls_pair, region="PL")
        async with running_gateway(cfg) as gw:
            first = mail(
                f"601123456@{DOMAIN}", "Czy 10:00?", subject="Spotkanie", Message_ID="<s1@acme.example>"
            )
            assert (await gw.send(first)).error is None
            await smsc.wait_for(1)
            answer = await answered(gw, smsc, sink, "+48601123456", "Tak")
            assert answer["From"].addresses[0].addr_spec == f"+48601123456@{DOMAIN}"
            old = f"48601123456@{DOMAIN}"
            again = answer_to(answer, "Świetnie")
            again.replace_header("To", old)
            assert (await gw.send(again, [old])).error is None
            sent = await smsc.wait_for(2)
            assert sent[1].destination == "+48601123456"
            assert sent[1].text == "Świetnie"


@pytest.mark.parametrize(
    ("phone", "old"),
    [
        ("+4915112345678", "4915112345678"),  # read nationally: +494915112345678
        ("+48601123456", "48601123456"),  # read nationally: +4948601123456
    ],
)
async def test_under_de_a_reply_to_an_old_answer_mail_reaches_the_phone_not_a_stranger(
    tmp_path: Path, tls_pair: Any, phone: str, old: str
) -> None:
    # Answer mails written before the "+" came from the phone's digits alone. Under DE the digits
    # read as a German number too, and the user's Reply to such a mail texted a stranger. The
    # region's own country code is read as one, and otherwise the phone the sender talks to wins.
    relay = free_port()
    async with HappySMSC() as smsc, smtp_sink(relay) as sink:
        cfg = gateway_config(tmp_path, smsc_port=smsc.port, relay=relay, tls=tls_pair, region="DE")
        async with running_gateway(cfg) as gw:
            first = mail(
                f"{phone}@{DOMAIN}", "Passt 10 Uhr?", subject="Termin", Message_ID="<o1@acme.example>"
            )
            assert (await gw.send(first)).error is None
            await smsc.wait_for(1)
            answer = await answered(gw, smsc, sink, phone, "Ja")
            again = answer_to(answer, "Gut")
            again.replace_header("To", f"{old}@{DOMAIN}")
            assert (await gw.send(again, [f"{old}@{DOMAIN}"])).error is None
            sent = await smsc.wait_for(2)
            assert sent[1].destination == phone
