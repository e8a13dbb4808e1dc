"""An answer while an SMS whose submit went unanswered waits to go again behind its link down (R-3.1).

The phone's answer waits for the SMSC's answer to the submit of an SMS to it (`conversations.waiting`),
at most as long as that submit can stay unanswered: its time-out, its late answer's grace, its re-send's
time-out. An SMS whose session was lost with its submit on the wire waits to go again; while its link
stays down nothing can say whether the phone got it, and the wait ended with it counted as not sent.
It made every answer from the phone wait that long, for as long as the link was down, even one that
came long after that submit, and the answer went to the SMS the phone was known to have got all the
same. Now the wait counts from that submit: an answer that comes later goes to that SMS at once, one
that comes sooner waits no longer than the submit's bound.

A real daemon on a clock the test moves ahead, with its built-in SMSC simulator: the SMS leave by one
link, whose logins the simulator refuses once it dropped it, and the phone's answers come by a second
link of the other protocol, which stays up. Real SMTP in, a real relay sink out, the SQLite file.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.conversations import reached, waiting
from gateway.store.partnotes import LINK_LOST
from smsc.simulator.control import send_command
from tests.answer_world import answers
from tests.conftest import STAFF, free_port, running_gateway, smtp_sink
from tests.test_answer_overtakes_submit_answer import DELAY, REPLY, Setup, patient
from tests.test_own_numbers import own_config
from tests.test_two_way import BOB

OTHER = {"smpp": "cimd2", "cimd2": "smpp"}


class Ahead:
    """The daemon's clock: ahead of the real one by `seconds`."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return time.time() + self.seconds


class Outage:
    """The set-up, the clock it runs on, and the protocol of the link the answers come by."""

    def __init__(self, s: Setup, clock: Ahead, answers_by: str) -> None:
        self.s = s
        self.clock = clock
        self.answers_by = answers_by
        self.bound = waiting.wait_seconds(s.gw.config)
        self.password = ""  # the simulator's, while it refuses the link's logins

    async def unanswered_then_down(self) -> None:
        """acme's SMS delivered; other's taken by the SMSC, which does not answer its submit before the
        link drops; the link's logins refused from then on."""
        s = self.s
        await s.acme_then_other(60)
        await self.cut_off()

    async def cut_off(self) -> None:
        """The link drops with the part's submit on the wire, its logins refused from now on."""
        s = self.s
        self.password = s.core.cfg.password
        s.core.cfg = s.core.cfg.model_copy(update={"password": "changed"})
        command = {"op": "drop", "protocol": s.protocol}
        assert (await send_command("127.0.0.1", s.gw.daemon.simulator.control_port, command))["ok"]
        cut = "SELECT state != 'active' AND instr(error, ?) > 0 FROM parts WHERE message_id = 2"
        await s.gw.until(lambda: s.gw.store.db.conn.execute(cut, (LINK_LOST,)).fetchone() == (1,))

    def link_back(self) -> None:
        self.s.core.cfg = self.s.core.cfg.model_copy(update={"password": self.password})

    async def phone_answers(self, text: str) -> None:
        command = {"op": "mo", "reply_to_last": True, "text": text, "protocol": self.answers_by}
        assert (await send_command("127.0.0.1", self.s.gw.daemon.simulator.control_port, command))["ok"]
        stored = "SELECT 1 FROM mo"
        await self.s.gw.until(lambda: self.s.gw.store.db.conn.execute(stored).fetchone() is not None)

    def still_waits_to_go(self) -> bool:
        """Other's SMS not sent again: its link is still down."""
        row = self.s.gw.store.db.conn.execute("SELECT state FROM parts WHERE message_id = 2").fetchone()
        return row[0] in ("queued", "deferred", "active") and len(self.s.core.records) == 2


@asynccontextmanager
async def outage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str) -> AsyncIterator[Outage]:
    """acme's STAFF and other's BOB on the shipped default sender: the SMS to the phone leave by link
    "main" (`protocol`) alone, its prefix kept to it; the answers come by link "answers" (the other)."""
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    monkeypatch.setattr(reached, "REPLY_SECONDS", REPLY)
    port = free_port()
    cfg = patient(own_config(tmp_path, protocol, port))
    main = cfg.smsc[0].model_copy(update={"prefixes": ["+4860"], "exclusive": True})
    sim = cfg.simulator
    other = OTHER[protocol]
    answering = main.model_copy(
        update={
            "name": "answers",
            "type": other,
            "port": sim.cimd2_port if other == "cimd2" else sim.smpp_port,
            "prefixes": ["+44"],
            "exclusive": False,
            "window": 1 if other == "cimd2" else main.window,
        }
    )
    cfg = cfg.model_copy(update={"smsc": [main, answering]})
    clock = Ahead()
    async with smtp_sink(port) as sink, running_gateway(cfg, clock=clock) as gw:
        s = Setup(gw, sink, protocol)
        await gw.until(lambda: s.core._pick(other) is not None and s.core._pick(protocol) is not None)
        yield Outage(s, clock, other)


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_long_after_the_lost_submit_goes_at_once_to_the_sms_the_phone_got(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    async with outage(tmp_path, monkeypatch, protocol) as o:
        await o.unanswered_then_down()
        o.clock.seconds += o.bound + 10  # the link down since longer than that submit could stay unanswered
        await o.phone_answers("Thanks for the offer")
        await o.s.gw.until(lambda: bool(answers(o.s.sink)))
        [(rcpts, msg)] = answers(o.s.sink)
        assert rcpts == [STAFF], msg.get_content()
        assert "ACME offer" in msg.get_content() and "Other invoice" not in msg.get_content()
        assert o.s.mo() == ("mailed", "acme")
        assert o.still_waits_to_go()


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_soon_after_the_lost_submit_waits_no_longer_than_that_submit_could_stay_unanswered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    async with outage(tmp_path, monkeypatch, protocol) as o:
        await o.unanswered_then_down()
        o.clock.seconds += o.bound / 2
        await o.phone_answers("Invoice 12 paid")
        assert o.s.mo()[0] == "waiting"  # the SMS it may answer may still be sent again and taken
        o.clock.seconds += o.bound / 2 + 10  # the submit's bound past, not the answer's
        await o.s.gw.until(lambda: bool(answers(o.s.sink)))
        [(rcpts, msg)] = answers(o.s.sink)
        assert rcpts == [STAFF], msg.get_content()
        assert o.s.mo() == ("mailed", "acme")
        assert o.still_waits_to_go()


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_while_the_sms_goes_again_after_the_outage_waits_for_that_submit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    # Back on the wire the SMS counts again however long ago it was cut off: the phone answers it after
    # its re-send, before the SMSC answers that submit, and the answer goes to it once the SMSC took it.
    async with outage(tmp_path, monkeypatch, protocol) as o:
        await o.unanswered_then_down()
        o.clock.seconds += o.bound + 10
        o.s.delay_submit_answers(DELAY)
        o.s.core.cfg = o.s.core.cfg.model_copy(update={"password": o.password})  # the link is back
        await o.s.gw.until(lambda: len(o.s.core.records) == 3, timeout=30)
        rcpts, body = await o.s.phone_answers("Invoice 12 paid")
        assert rcpts == [BOB], body
        assert "Other invoice 12 due" in body and "ACME offer" not in body
        assert o.s.mo() == ("mailed", "other")


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_soon_after_a_resend_cut_off_again_waits_for_the_next_resend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    # A flapping link: the SMS cut off long ago goes again when the link is back, and is cut off again.
    # The phone may have it from either send, and its answer comes just after the last: it waits within
    # that submit's bound, and goes to the SMS once the next send is taken. Counted from the first send,
    # it went at once to acme's, the SMS the phone was known to have got.
    async with outage(tmp_path, monkeypatch, protocol) as o:
        await o.unanswered_then_down()
        o.clock.seconds += o.bound + 10
        o.link_back()
        await o.s.gw.until(lambda: len(o.s.core.records) == 3, timeout=30)  # its submit left unanswered
        await o.cut_off()
        await o.phone_answers("Invoice 12 paid")
        assert o.s.mo()[0] == "waiting"
        assert answers(o.s.sink) == []
        o.s.delay_submit_answers(0.0)
        o.link_back()
        await o.s.gw.until(lambda: bool(answers(o.s.sink)), timeout=30)
        [(rcpts, msg)] = answers(o.s.sink)
        assert rcpts == [BOB], msg.get_content()
        assert "Other invoice 12 due" in msg.get_content() and "ACME offer" not in msg.get_content()
        assert o.s.mo() == ("mailed", "other")
