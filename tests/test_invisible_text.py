"""Invisible characters in a mail cost no SMS characters and never make a blank SMS (R-1.4, R-1.6):
direction marks that mail programs and phone contacts paste around numbers are dropped before the
alphabet is chosen, and a text with nothing visible is refused like an empty one."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from gateway.smtp import replies
from gateway.smtp.charsets import normalize
from smsc.encoding import Coding, EmptyText, plan
from tests.conftest import DOMAIN, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC

# 150 visible characters; Android contacts, WhatsApp and Teams wrap a copied number in LRE ... PDF.
COPIED = (
    "Call me at \u202a+48 601 123 456\u202c about the delivery tomorrow morning. The truck arrives "
    "at gate 4, please have the papers ready. Thanks, John"
)
BIDI = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


async def test_a_number_pasted_with_direction_marks_is_one_gsm_sms(tmp_path: Path) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.send(mail(to("601123456"), COPIED))
        await smsc.wait_for(1)
        sms = smsc.received[0]
        assert (sms.data_coding, sms.udh) == (0, b"")
        assert sms.text == COPIED.replace("\u202a", "").replace("\u202c", "")


@pytest.mark.parametrize("mark", [*BIDI, "\u2061", "\u2062", "\u2063", "\u2064"])
def test_every_direction_mark_vanishes_from_latin_text(mark: str) -> None:
    text = normalize(f"Meeting at 10:00{mark} in room 5")
    assert text == "Meeting at 10:00 in room 5" and plan(text).coding is Coding.GSM7


def test_direction_marks_stay_in_right_to_left_text() -> None:
    # In Hebrew or Arabic they decide on which side of a word a number or a full stop shows.
    hebrew = "\u05e9\u05dc\u05d5\u05dd 601 123 456\u200f."
    assert normalize(hebrew) == hebrew


async def test_a_body_of_invisible_characters_is_refused_like_an_empty_one(tmp_path: Path) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(mail(to("601123456"), "\u200e\u200f\u200c"))
        assert isinstance(res.error, smtplib.SMTPDataError)
        assert res.error.smtp_error.decode() == replies.EMPTY_TEXT[4:]
        assert gw.store.admin.count_messages() == 0


async def test_a_subject_with_an_invisible_body_is_sent_alone(tmp_path: Path) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.send(mail(to("601123456"), "\u200c\ufe0f\u200d", subject="Gate 4 at 10:00"))
        await smsc.wait_for(1)
        assert (smsc.received[0].data_coding, smsc.received[0].text) == (0, "Gate 4 at 10:00")


@pytest.mark.parametrize(
    "text", ["\u200c", "\u200d\u200c", "\ufe0f", "\u034f", "\u3164", "\U000e0067 \u2063"]
)
def test_nothing_visible_is_empty_text(text: str) -> None:
    with pytest.raises(EmptyText):
        plan(text)


@pytest.mark.parametrize("text", ["\u0600", "\U0001fae8", "\ue000", "x\u200c"])
def test_a_drawn_sign_or_an_emoji_newer_than_the_unicode_tables_is_text(text: str) -> None:
    # U+0600 is a format character that is drawn; U+1FAE8 (shaking face) is unassigned in Python
    # 3.11's tables; a private-use character shows as whatever the phone put there.
    assert plan(text).text == text


# A ZWNJ or CGJ between two words (a preheader's "&zwnj;&#847;" padding, a word processor's) showed as
# nothing and made the whole text UCS-2: 70 characters a part instead of 160.
@pytest.mark.parametrize("joiner", ["\u200c", "\u200d", "\u034f", "\u200c\u034f\u200d"])
def test_a_joiner_between_latin_words_vanishes(joiner: str) -> None:
    text = normalize(f"Zadzwoń do klienta {joiner} teraz, kod 48{joiner}21")
    assert text == "Zadzwoń do klienta  teraz, kod 4821"
    assert plan(normalize(f"Zadzwon do klienta {joiner} teraz")).coding is Coding.GSM7


@pytest.mark.parametrize(
    "text",
    [
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family: one emoji of three
        "\u2764\ufe0f\u200d\U0001f525",  # a heart on fire
        "\U0001f44d\U0001f3fd\u200d",  # a skin tone before it
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian: a half-space inside a word
        "\u0915\u094d\u200d\u0937",  # Devanagari: a half form
        "\u041f\u0440\u0438\u200c\u0432\u0435\u0442",  # beside Cyrillic letters
        "\u00e4\u034f\u0323",  # CGJ keeps two combining marks in their order
    ],
)
def test_a_joiner_that_joins_stays(text: str) -> None:
    assert normalize(text) == text


async def test_a_mail_with_a_joiner_between_words_is_one_gsm_sms(tmp_path: Path) -> None:
    body = "Zadzwon do klienta \u200c teraz. Klient czeka na telefon w sprawie dostawy jutro \u034f rano."
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.send(mail(to("601123456"), body))
        await smsc.wait_for(1)
        sms = smsc.received[0]
        assert (sms.data_coding, sms.udh) == (0, b"")
        assert sms.text == " ".join(body.replace("\u200c", "").replace("\u034f", "").split())
