"""iPhone "smart punctuation" (didn’t, “front desk”, –, …, no-break spaces) made a 124-character
English text two UCS-2 parts instead of one GSM part, and only `--transliterate on` helped, which
also strips Polish letters. A text whose only non-GSM characters are such punctuation now goes in
GSM with it made plain, without any setting; a text that stays UCS-2 anyway goes as written.

plan() directly, then through a running daemon: a real SMTP client to its listener, its built-in
simulator's records as what the phone got, the confirmation at a real SMTP sink; and a premium
answer, planned the same way, through the daemon of tests/test_premium_answer_rules.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smsc.encoding import Coding, plan
from smsc.plainchars import PLAIN_PUNCTUATION, TRANSLITERATION
from tests.conftest import DOMAIN, mail
from tests.test_cut_from import body_of, confirming
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import reply_to, smtp

# As an iPhone's Mail writes it: curly apostrophes and quotes, an en dash, an ellipsis, a no-break space.
IPHONE = "I didn’t get the keys – please leave them at the “front desk”… I’ll be there at 5\u00a0PM, thanks!"
PLAIN = "I didn't get the keys - please leave them at the \"front desk\"... I'll be there at 5 PM, thanks!"
LONG_IPHONE = IPHONE + " Don’t wait, I’ll call if late."  # 124 characters
LONG_PLAIN = PLAIN + " Don't wait, I'll call if late."


def test_a_text_whose_only_non_gsm_characters_are_punctuation_goes_in_one_gsm_part() -> None:
    assert len(LONG_IPHONE) == 124
    for transliterate in (False, True):
        p = plan(LONG_IPHONE, transliterate=transliterate)
        assert p.coding is Coding.GSM7 and len(p.parts) == 1 and p.reason is None
        assert p.text == LONG_PLAIN
        assert p.plain_punctuation and not p.transliterated  # no Polish letter was touched
    assert plan("plain text").plain_punctuation is False


@pytest.mark.parametrize(
    "text",
    [
        "Nie dostałem kluczy – proszę zostawić je w „recepcji”…",  # Polish letters keep it UCS-2
        "See you at the “front desk” 😀",  # so does an emoji
    ],
)
def test_a_text_that_stays_ucs2_is_sent_as_written(text: str) -> None:
    p = plan(text)
    assert p.coding is Coding.UCS2 and p.text == text and not p.plain_punctuation and not p.transliterated


def test_transliteration_says_both_what_it_did_to_letters_and_to_punctuation() -> None:
    p = plan("Zażółć „gęślą” jaźń", transliterate=True)
    assert p.text == 'Zazolc "gesla" jazn' and p.transliterated and p.plain_punctuation
    p = plan("Zażółć gęślą jaźń", transliterate=True)
    assert p.transliterated and not p.plain_punctuation


def test_narrow_and_figure_spaces_are_made_plain_too() -> None:
    p = plan("Price: 5\u202f000\u2007PLN\u2009net")
    assert p.coding is Coding.GSM7 and p.text == "Price: 5 000 PLN net"
    assert set(PLAIN_PUNCTUATION.items()) <= set(TRANSLITERATION.items())  # one table, shared


def test_punctuation_stays_when_made_plain_it_would_cost_more_parts() -> None:
    # Sixty ellipses: 60 UCS-2 units (one SMS) as written, 180 septets (two parts) made plain.
    text = "…" * 60
    p = plan(text)
    assert p.coding is Coding.UCS2 and len(p.parts) == 1 and p.text == text and not p.plain_punctuation


def test_made_plain_a_long_text_keeps_more_of_it_and_says_what_it_cut() -> None:
    text = "It’s " + "x" * 2000
    p = plan(text)
    assert p.coding is Coding.GSM7 and p.truncated and len(p.parts) == 10
    assert p.text + p.dropped == "It's " + "x" * 2000


def test_as_written_keeps_every_character_as_a_phone_sends_it() -> None:
    p = plan(IPHONE, as_written=True)
    assert p.coding is Coding.UCS2 and p.text == IPHONE


async def test_the_phone_gets_the_text_in_one_gsm_part_and_the_sender_is_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with confirming(tmp_path, capsys) as (gw, sink):
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", LONG_IPHONE))).error is None
        await gw.until(lambda: len(core.records) >= 1)
        await asyncio.sleep(0.3)  # a second part would have come by now
        assert [(r["data_coding"], r["text"]) for r in core.records] == [(0, LONG_PLAIN)]
        await sink.wait(1)
        confirmation = body_of(sink.messages[0][2])
        assert "1 SMS part(s), GSM 03.38" in confirmation, confirmation
        assert "Typographic quotes, dashes, bullets and spaces were made plain" in confirmation, confirmation
        assert "Polish letters" not in confirmation

        # Polish letters keep it UCS-2: the quotes go as written.
        polish = "Nie dostałem kluczy – proszę zostawić je w „recepcji”…"
        assert (await gw.send(mail(f"601123457@{DOMAIN}", polish))).error is None
        await gw.until(lambda: len(core.records) >= 2)
        assert (core.records[1]["data_coding"], core.records[1]["text"]) == (8, polish)


async def test_a_premium_answer_from_an_iphone_goes_whole_in_one_gsm_sms(tmp_path: Path) -> None:
    """A premium answer is one SMS: in UCS-2 this one was cut to 70 characters, and the client told."""
    async with premium(tmp_path) as w:
        vote = await w.vote()
        assert (await smtp(w.gw.port, *reply_to(vote, IPHONE))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert (w.sent()[0]["data_coding"], w.sent()[0]["text"]) == (0, PLAIN)
        assert w.gw.store.db.conn.execute("SELECT cut FROM premium_answers").fetchall() == [(0,)]
