"""A client's answer to a premium SMS follows its account's rules, as its staff's mail does: the end
marker, transliteration, the reply window and a suspension (R-3, R-4.5).

Against real peers, as tests/test_premium_loop.py: the daemon with its built-in SMSC simulator, the
service added and the MO's mail read at a real SMTP sink, the account changed with the CLI while the
daemon runs, and the answer sent by a real SMTP client to the answer address.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config import parse_config
from gateway.conversations.numbers import display
from gateway.smtp import replies
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, Running, Sink, free_port, running_gateway, smtp_sink
from tests.test_premium_loop import CLIENT, PHONE, premium_config, reply_to, smtp
from tests.test_two_way import parsed

DAY = 86400.0


@dataclass
class Premium:
    """A running gateway whose service KP123 (account acme) is confirmed, and how to drive it."""

    gw: Running
    sink: Sink
    config: Path
    skew: list[float]

    async def cli(self, *args: str) -> None:
        assert await asyncio.to_thread(main, ["-c", str(self.config), *args]) == 0

    async def vote(
        self, text: str = "KP123 vote A", phone: str = PHONE, protocol: str = "smpp"
    ) -> EmailMessage:
        """A phone's premium SMS through the simulator (by the link of `protocol`); returns the mail
        the client gets."""
        seen = len(self.sink.messages)
        mo = {"op": "mo", "source": phone, "destination": "7355", "text": text, "protocol": protocol}
        assert (await send_command("127.0.0.1", self.gw.daemon.simulator.control_port, mo))["ok"]
        await self.sink.wait(seen + 1)
        vote = parsed(self.sink.messages[seen][2])
        assert vote["Subject"] == f"KP123 · 7355 · {display(phone)}"
        return vote

    def sent(self) -> list[dict[str, object]]:
        return list(self.gw.daemon.simulator.core.records)

    def answers(self) -> list[tuple[object, ...]]:
        return self.gw.store.db.conn.execute(
            "SELECT state, reason FROM premium_answers ORDER BY id"
        ).fetchall()


@asynccontextmanager
async def premium(tmp_path: Path, edit: Callable[[str], str] | None = None) -> AsyncIterator[Premium]:
    """`edit`: a change to the config's text (links, routes)."""
    relay = free_port()
    path, cfg = premium_config(tmp_path, "smpp", relay)
    if edit is not None:
        text = edit(path.read_text())
        path.write_text(text)
        cfg = parse_config(text, source="test", base_dir=tmp_path)
    skew = [0.0]
    async with smtp_sink(relay) as sink, running_gateway(cfg, lambda: time.time() + skew[0]) as gw:  # type: ignore[arg-type]
        world = Premium(gw, sink, path, skew)
        await world.cli("premium", "add", "KP123", "--account", "acme", "--email", CLIENT)
        gw.store.outbox.on_queued()  # the CLI's mail is the daemon's to find within 5 s: now, here
        await sink.wait(1)
        assert (await smtp(gw.port, *reply_to(parsed(sink.messages[0][2]), "yes"))).error is None
        yield world


@pytest.mark.parametrize(
    ("setting", "marker"),
    [((), "END"), (("--end-marker", "KONIEC"), "KONIEC")],
    ids=["gateway-default", "account-own"],
)
async def test_an_answer_is_cut_at_the_accounts_end_marker(
    tmp_path: Path, setting: tuple[str, ...], marker: str
) -> None:
    async with premium(tmp_path) as w:
        if setting:
            await w.cli("account", "set", "acme", *setting)
        vote = await w.vote()
        footer = "This e-mail and any attachments are confidential and intended solely for the addressee."
        answer, to = reply_to(vote, f"TAK, zgadza sie.\n{marker}\n{footer}")
        assert (await smtp(w.gw.port, answer, to)).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert w.sent()[0]["text"] == "TAK, zgadza sie."


async def test_an_answer_is_cut_at_the_accounts_cut_from_phrase(tmp_path: Path) -> None:
    """The client's mail server appends its clause to every answer: the account's cut-from phrase
    takes it off as it does from staff mail (cut to one SMS, it replaced the end of the answer)."""
    async with premium(tmp_path) as w:
        await w.cli("account", "set", "acme", "--cut-from", "This e-mail and any attachments")
        vote = await w.vote()
        footer = "This e-mail and any\nattachments are confidential and intended solely for the addressee."
        assert (await smtp(w.gw.port, *reply_to(vote, f"TAK, zgadza sie.\n\n{footer}"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert w.sent()[0]["text"] == "TAK, zgadza sie."


async def test_an_answer_is_transliterated_as_the_accounts_sms(tmp_path: Path) -> None:
    polish = (
        "Dziękujemy za głos! Wyniki konkursu ogłosimy w piątek, a zwycięzcy otrzymają nagrody pocztą."
        " Pozdrawiamy, Jury"
    )
    assert 70 < len(polish) <= 160  # more than one UCS-2 SMS holds, one GSM SMS once transliterated
    async with premium(tmp_path) as w:
        await w.cli("account", "set", "acme", "--transliterate", "on")
        vote = await w.vote()
        assert (await smtp(w.gw.port, *reply_to(vote, polish))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        sms = w.sent()[0]
        assert sms["text"] == (
            "Dziekujemy za glos! Wyniki konkursu oglosimy w piatek, a zwyciezcy otrzymaja nagrody poczta."
            " Pozdrawiamy, Jury"
        )
        assert sms["data_coding"] == 0  # GSM, whole: nothing was cut, so the client is told of no cut
        assert w.gw.store.db.conn.execute("SELECT cut FROM premium_answers").fetchall() == [(0,)]
        assert not w.gw.store.db.conn.execute("SELECT 1 FROM outbox WHERE kind = 'premium-cut'").fetchall()


@pytest.mark.parametrize(
    ("days", "after", "sent"),
    [
        ("14", 8 * DAY, True),  # past the installation's 7 days, inside the account's 14
        ("2", 3 * DAY, False),  # inside the installation's 7 days, past the account's 2
    ],
)
async def test_the_answer_window_is_the_accounts(tmp_path: Path, days: str, after: float, sent: bool) -> None:
    async with premium(tmp_path) as w:
        await w.cli("account", "set", "acme", "--reply-window-days", days)
        vote = await w.vote()
        w.skew[0] = after
        result = await smtp(w.gw.port, *reply_to(vote, "Wygrana!"))
        if sent:
            assert result.error is None
            await w.gw.until(lambda: len(w.sent()) == 1)
            assert w.sent()[0]["text"] == "Wygrana!"
        else:
            assert isinstance(result.error, smtplib.SMTPDataError)
            assert result.error.smtp_error.decode() == replies.PREMIUM_TOO_OLD.format(float(days))[4:]
            assert w.answers() == [("refused", "older than the reply window")]
            assert w.gw.states() == []


async def test_a_suspended_accounts_answer_is_refused_and_uses_up_nothing(tmp_path: Path) -> None:
    async with premium(tmp_path) as w:
        vote = await w.vote()
        await w.cli("account", "suspend", "acme", "--reason", "unpaid invoice")
        refused = await smtp(w.gw.port, *reply_to(vote, "Wygrana!"))
        assert isinstance(refused.error, smtplib.SMTPDataError)
        assert (refused.error.smtp_code, refused.error.smtp_error.decode()) == (
            550,
            replies.SUSPENDED.format("acme", "unpaid invoice")[4:],
        )
        assert w.answers() == [("refused", "account suspended: unpaid invoice")]
        assert w.gw.states() == [] and w.sent() == []  # no SMS stored, held or sent
        # The public's premium SMS still reach the suspended client: the phone paid for it.
        await w.vote("KP123 vote B")
        await w.cli("account", "resume", "acme")
        # The refusal used up no free answer: once resumed, the client's answer goes out.
        assert (await smtp(w.gw.port, *reply_to(vote, "Wygrana!"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert w.sent()[0]["text"] == "Wygrana!"


def two_operators(text: str) -> str:
    """The SMPP link serves German numbers alone; a CIMD2 link to the simulator is the default route
    (so Polish phones' SMS go by it)."""
    cimd2 = re.search(r"cimd2_port = (\d+)", text)
    assert cimd2 is not None
    other = f'[[smsc]]\nname = "other"\ntype = "cimd2"\nport = {cimd2[1]}\n'
    other += 'system_id = "smsgw"\npassword = "secret"\n'
    text = text.replace('type = "smpp"\n', 'type = "smpp"\nprefixes = ["+49"]\n', 1)
    return text.replace("\n[simulator]", "\n" + other + "\n[simulator]", 1)


async def test_an_answer_leaves_by_the_link_its_vote_came_by(tmp_path: Path) -> None:
    # The vote came by the SMPP link, whose operator has the short code; the phone's own route is
    # the CIMD2 link. The answer went by that one: refused there as an invalid source (the free
    # answer spent, the client bounced) or sent by the wrong operator.
    async with premium(tmp_path, two_operators) as w:
        vote = await w.vote()
        assert (await smtp(w.gw.port, *reply_to(vote, "Dzieki!"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert (w.sent()[0]["text"], w.sent()[0]["protocol"]) == ("Dzieki!", "smpp")
        # A staff member's SMS to the same phone takes the phone's route, as before.
        staff = EmailMessage()
        staff["From"], staff["To"], staff["Subject"] = STAFF, f"601123456@{DOMAIN}", "Hi"
        staff.set_content("Office here")
        assert (await w.gw.send(staff)).error is None
        await w.gw.until(lambda: len(w.sent()) == 2)
        assert (w.sent()[1]["text"], w.sent()[1]["protocol"]) == ("Hi: Office here", "cimd2")


async def test_identical_answers_to_one_phone_follow_the_operators_daily_rule(tmp_path: Path) -> None:
    # a client answering every vote of one phone with the same text sent it five times in a
    # day, where a staff member's fourth identical SMS to that phone is refused.
    async with premium(tmp_path) as w:
        votes = [await w.vote(f"KP123 vote {i}") for i in range(4)]
        for vote in votes[:3]:
            assert (await smtp(w.gw.port, *reply_to(vote, "Dziekujemy za glos!"))).error is None
        refused = await smtp(w.gw.port, *reply_to(votes[3], "Dziekujemy za glos!"))
        assert isinstance(refused.error, smtplib.SMTPDataError)
        assert (refused.error.smtp_code, refused.error.smtp_error.decode()) == (
            550,
            f"5.7.1 More than 3 identical SMS to {PHONE} today are not allowed (operator anti-spam rule);"
            " change the text or send it tomorrow",
        )
        assert w.answers()[3] == ("refused", "more than 3 identical SMS to the phone today")
        # The refusal used up no free answer: another text to the same vote goes.
        assert (await smtp(w.gw.port, *reply_to(votes[3], "Wygrales!"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 4)
        assert [s["text"] for s in w.sent()] == ["Dziekujemy za glos!"] * 3 + ["Wygrales!"]
