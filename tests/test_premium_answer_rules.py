"""A client's answer to a premium SMS follows its account's rules, as its staff's mail does: the end
marker, transliteration, the reply window and a suspension (R-3, R-4.5).

Against real peers, as tests/test_premium_loop.py: the daemon with its built-in SMSC simulator, the
service added and the MO's mail read at a real SMTP sink, the account changed with the CLI while the
daemon runs, and the answer sent by a real SMTP client to the answer address.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import AsyncIterator
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
from tests.conftest import Running, Sink, free_port, running_gateway, smtp_sink
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

    async def vote(self, text: str = "KP123 vote A", phone: str = PHONE) -> EmailMessage:
        """A phone's premium SMS through the simulator; returns the mail the client gets."""
        seen = len(self.sink.messages)
        mo = {"op": "mo", "source": phone, "destination": "7355", "text": text}
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
async def premium(tmp_path: Path, prefixes: str = "") -> AsyncIterator[Premium]:
    """`prefixes`: the link's, as config.toml writes them (none: it is the default route)."""
    relay = free_port()
    path, cfg = premium_config(tmp_path, "smpp", relay)
    if prefixes:
        text = path.read_text().replace('type = "smpp"\n', f'type = "smpp"\nprefixes = {prefixes}\n', 1)
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


async def test_an_answer_to_a_phone_no_link_serves_is_refused_at_once_and_uses_up_nothing(
    tmp_path: Path,
) -> None:
    # The link serves Polish numbers only and there is no default route; a German phone voted
    # (its SMS came in on that link all the same). The answer was queued and waited unsent until
    # it expired, and the client was never told.
    german = "+4915112345678"
    async with premium(tmp_path, prefixes='["+48"]') as w:
        vote = await w.vote(phone=german)
        refused = await smtp(w.gw.port, *reply_to(vote, "Danke!"))
        assert isinstance(refused.error, smtplib.SMTPDataError)
        assert (refused.error.smtp_code, refused.error.smtp_error.decode()) == (
            550,
            replies.PREMIUM_NO_ROUTE.format("+49 1511 2345678")[4:],
        )
        assert w.answers() == [("refused", "no SMSC link serves the phone")]
        assert w.gw.states() == [] and w.sent() == []
        # A Polish phone's vote on the same service is answered as ever.
        polish = await w.vote("KP123 vote B")
        assert (await smtp(w.gw.port, *reply_to(polish, "Dzieki!"))).error is None
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert w.sent()[0]["text"] == "Dzieki!"
