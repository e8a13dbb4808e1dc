"""A client's mail server that tags its envelope senders with BATV (`prvs=0123abcdef=sms@...`,
Barracuda's `btv1==...==`) still answers from an address on the reply list (R-4.5): the tag is
taken off, the domain stays. An SRS address is not decoded: anyone can write one.

Against real peers, as tests/test_premium_answer_rules.py: the answers go by a real SMTP client
with those envelope senders to the running daemon, the SMS to its simulator.
"""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from gateway.premium.answers import without_batv
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import CLIENT, reply_to, smtp

LOCAL, DOMAIN = CLIENT.split("@")


@pytest.mark.parametrize(
    "sender",
    [f"prvs=0123abcdef={CLIENT}", f"PRVS=4051F00Dab={CLIENT}", f"btv1==0a1b2c3d4e5=={CLIENT}"],
)
async def test_an_answer_from_a_batv_tagged_sender_on_the_list_goes(tmp_path: Path, sender: str) -> None:
    async with premium(tmp_path) as w:
        vote = await w.vote()
        answer, to = reply_to(vote, "Dziekujemy!", sender=sender)
        assert (await smtp(w.gw.port, answer, to, sender=sender)).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert w.sent()[0]["text"] == "Dziekujemy!"
        assert w.answers() == [("sent", None)]


@pytest.mark.parametrize(
    "sender",
    [
        f"prvs=0123abcdef=eve@{DOMAIN}",  # tagged, but not the listed address
        f"SRS0=HHH=TT={DOMAIN}={LOCAL}@forwarder.example",  # SRS: anyone can write it
        f"prvs=0123abcdef={LOCAL}@evil.example",  # the listed local part in another domain
    ],
)
async def test_an_answer_from_another_address_stays_refused(tmp_path: Path, sender: str) -> None:
    async with premium(tmp_path) as w:
        vote = await w.vote()
        answer, to = reply_to(vote, "free SMS", sender=sender)
        refused = await smtp(w.gw.port, answer, to, sender=sender)
        assert isinstance(refused.error, smtplib.SMTPDataError) and refused.error.smtp_code == 550
        assert w.answers() == [("refused", "sender not on the reply ACL")]
        assert w.sent() == []


def test_only_a_batv_tag_is_taken_off() -> None:
    assert without_batv("msprvs1=19210abcDEF-01=bounces@radio.example.org") == "bounces@radio.example.org"
    assert without_batv("prvs=0123abcdef=") == "prvs=0123abcdef="
    assert without_batv("prvs=short=sms@radio.example.org") == "prvs=short=sms@radio.example.org"
