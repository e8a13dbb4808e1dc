"""A client's mail server that tags its envelope senders with BATV (`prvs=0123abcdef=sms@...`,
Barracuda's `btv1==...==`) still answers from an address on the reply list (R-4.5): the tag is
taken off, the domain stays. An SRS address is not decoded: anyone can write one.

Against real peers, as tests/test_premium_answer_rules.py: the answers go by a real SMTP client
with those envelope senders to the running daemon, the SMS to its simulator.
"""

from __future__ import annotations

import smtplib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

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


def bill_lines(root: Path, month: str) -> list[str]:
    return next(root.rglob(f"{month}/acme.txt")).read_text().splitlines()


async def test_a_tagging_servers_answers_are_one_sender_in_the_bill_and_the_listing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tag changes daily: recorded with it, each day's answers were another "user" in the account's
    billing file, and `premium answers` listed the tags."""
    tags = [f"prvs=0123abcdef={CLIENT}", f"prvs=0124fedcba={CLIENT.upper()}"]
    async with premium(tmp_path) as w:
        for n, sender in enumerate(tags):
            vote = await w.vote(f"KP123 vote {n}")
            answer, to = reply_to(vote, f"Dziekujemy {n}", sender=sender)
            assert (await smtp(w.gw.port, answer, to, sender=sender)).error is None
        await w.gw.until(lambda: len(w.sent()) == 2)
        month = datetime.now(ZoneInfo(w.gw.config.gateway.timezone)).strftime("%Y-%m")
        await w.cli("billing", "run", "--month", month)
        capsys.readouterr()
        await w.cli("premium", "answers")
        listed = capsys.readouterr().out
        recorded = w.gw.store.db.conn.execute(
            "SELECT e.mail_from, a.mail_from FROM premium_answers a"
            " JOIN messages m ON m.id = a.message_id JOIN emails e ON e.id = m.email_id ORDER BY a.id"
        ).fetchall()
    bill = bill_lines(tmp_path, month)
    users = [line.split("\t")[2:4] for line in bill if line.startswith("total\tuser\t")]
    assert users == [[CLIENT, "2"]]
    rows = [line.split("\t") for line in bill if not line.startswith(("#", "total\t"))]
    answers = [row[3] for row in rows if row[2:3] == ["premium-answer"]]
    assert answers == [CLIENT, CLIENT]
    assert listed.lower().count(CLIENT) == 2 and "prvs=" not in listed.lower()
    assert recorded == [(CLIENT, CLIENT), (CLIENT.upper(), CLIENT.upper())]


async def test_the_report_of_a_failed_answer_goes_to_the_tagged_envelope(tmp_path: Path) -> None:
    """A server that tags its senders refuses a bounce to an untagged address (that is what the tag
    is for): the failure report of the answer's SMS is mailed to the envelope as received."""
    sender = f"prvs=0123abcdef={CLIENT}"
    async with premium(tmp_path) as w:
        vote = await w.vote(phone="+48601123413")  # the simulator fails numbers ending in 13
        answer, to = reply_to(vote, "Dziekujemy!", sender=sender)
        assert (await smtp(w.gw.port, answer, to, sender=sender)).error is None
        seen = len(w.sink.messages)
        await w.sink.wait(seen + 1)
        mail_from, rcpts, raw = w.sink.messages[seen]
    assert (mail_from, rcpts) == ("<>", [sender])
    assert b"multipart/report" in raw and b"+48601123413" in raw


async def test_a_tagged_answer_from_an_address_that_is_also_a_user_gets_its_report_at_the_tagged_one(
    tmp_path: Path,
) -> None:
    # The radio's answering mailbox is also one of the account's users (it sends SMS too): MAIL took
    # the sender as that user, untagged, and the premium answer's failure report went to the
    # untagged address, which the tagging server refuses.
    sender = f"prvs=0123abcdef={CLIENT}"
    async with premium(tmp_path) as w:
        await w.cli("user", "add", CLIENT, "--account", "acme")
        vote = await w.vote(phone="+48601123413")  # the simulator fails numbers ending in 13
        answer, to = reply_to(vote, "Dziekujemy!", sender=sender)
        res = await smtp(w.gw.port, answer, to, sender=sender)
        assert res.error is None, res.error
        seen = len(w.sink.messages)
        await w.sink.wait(seen + 1)
        mail_from, rcpts, _raw = w.sink.messages[seen]
    assert (mail_from, rcpts) == ("<>", [sender])
