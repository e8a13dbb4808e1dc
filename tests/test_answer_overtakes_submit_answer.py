"""A phone's answer that comes before the SMSC's answer to the submit of the SMS it answers (R-3.1).

SMSCs answer a submit seconds late now and then, and deliver the phone's answer meanwhile, as a
delivery receipt may overtake the answer. Matched at once, the SMS just sent did not count as sent:
another company's user, who had texted the phone before from the same shared number, got the
answer, quoting their own SMS and billed for it. The answer now waits for that submit's answer:
taken, the SMS counts as sent; refused, as never sent.

A real daemon with its built-in SMSC simulator over SMPP and CIMD2 (its submit answers delayed),
real SMTP in, a real relay sink out, the SQLite file.

No phone answers an SMS within seconds of its submit: an answer that comes sooner is to an older SMS,
and goes to it, not to the newer one in flight. The phone here answers once `REPLY` s have passed (the
gateway's bound, shortened), before the SMSC answers the submit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.conversations import reached
from smsc.simulator.control import send_command
from tests.answer_world import answers
from tests.conftest import DOMAIN, STAFF, Sink, free_port, mail, running_gateway, smtp_sink
from tests.test_own_numbers import own_config
from tests.test_two_way import BOB

# How soon after an SMS's part went the phone may answer it (`reached.REPLY_SECONDS`, shortened), and
# how long the simulator keeps the answer to a submit, within the links' response time-out: the phone
# answers between the two, which are far enough apart that the order decides, not the machine's speed.
REPLY = 1.0
DELAY = 20.0
ANSWER_TIMEOUT = 30.0


def patient(cfg: Any) -> Any:
    """`cfg` with its links waiting `ANSWER_TIMEOUT` for a submit's answer (the tests' config: 5 s); a
    CIMD2 submit lost with its session goes again a second after the next login, not the shipped 30 s
    its report may take (`lost_submit_settle_seconds`), which these tests' waits are shorter than."""
    update = {"response_timeout_seconds": ANSWER_TIMEOUT, "lost_submit_settle_seconds": 1.0}
    links = [link.model_copy(update=update) for link in cfg.smsc]
    return cfg.model_copy(update={"smsc": links})


@dataclass
class Setup:
    gw: Any
    sink: Sink
    protocol: str

    @property
    def core(self) -> Any:
        return self.gw.daemon.simulator.core

    def delay_submit_answers(self, seconds: float) -> None:
        sim = self.gw.daemon.simulator
        server = sim.smpp if self.protocol == "smpp" else sim._cimd2.owner
        server.response_delay = seconds

    async def texts(self, sender: str, body: str) -> None:
        """`sender`'s SMS to the phone, once the SMSC has it (its submit answered or not)."""
        sent = len(self.core.records)
        msg = mail(f"601222222@{DOMAIN}", body=body, subject=f"From {sender}")
        msg.replace_header("From", sender)
        assert (await self.gw.send(msg, sender=sender)).error is None
        await self.gw.until(lambda: len(self.core.records) == sent + 1)

    async def acme_delivered(self) -> None:
        """acme's SMS to the phone, delivered: the one the phone has, before other's."""
        await self.texts(STAFF, "ACME offer: 10% off")
        await self.gw.until(lambda: self.gw.states() == ["delivered"])

    async def acme_then_other(self, delay: float = DELAY, *, refused: bool = False) -> None:
        """acme's SMS to the phone delivered, then other's: the SMSC has it, its submit's answer comes
        `delay` s late (a refusal with `refused`)."""
        await self.acme_delivered()
        if refused:
            self.core.cfg = self.core.cfg.model_copy(update={"reject_suffixes": ["601222222"]})
        self.delay_submit_answers(delay)
        await self.texts(BOB, "Other invoice 12 due")

    async def phone_answers(self, text: str, *, at_once: bool = False) -> tuple[list[str], str]:
        """The phone answers the last SMS the SMSC took, once it could have read it (`at_once`: at
        once, so to an older one); (recipients, body) of the mail with it."""
        if not at_once:
            await asyncio.sleep(REPLY + 0.2)
        command = {"op": "mo", "reply_to_last": True, "text": text, "protocol": self.protocol}
        assert (await send_command("127.0.0.1", self.gw.daemon.simulator.control_port, command))["ok"]
        await self.gw.until(lambda: bool(answers(self.sink)), timeout=30)
        [(rcpts, msg)] = answers(self.sink)
        return rcpts, msg.get_content()

    async def answer_goes_to_acme(self, text: str, *, at_once: bool = True) -> None:
        """The phone answers (at once by default): mailed to acme's STAFF with acme's SMS quoted, not
        other's, and on acme's bill."""
        rcpts, body = await self.phone_answers(text, at_once=at_once)
        assert rcpts == [STAFF], (rcpts, body)
        assert "ACME offer" in body and "Other invoice" not in body
        assert self.mo() == ("mailed", "acme")

    def mo(self) -> tuple[Any, ...]:
        """(state, billed account's name) of the MO."""
        return tuple(
            self.gw.store.db.conn.execute(
                "SELECT m.state, a.name FROM mo m LEFT JOIN accounts a ON a.id = m.account_id"
            ).fetchone()
        )


@asynccontextmanager
async def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str) -> AsyncIterator[Setup]:
    """acme's STAFF and other's BOB on the shipped default sender (no pool): the phone's answers to
    both come to one number."""
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    monkeypatch.setattr(reached, "REPLY_SECONDS", REPLY)
    port = free_port()
    cfg = patient(own_config(tmp_path, protocol, port))
    async with smtp_sink(port) as sink, running_gateway(cfg) as gw:
        yield Setup(gw, sink, protocol)


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_before_the_submit_answer_goes_to_the_sms_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    async with setup(tmp_path, monkeypatch, protocol) as s:
        await s.acme_then_other()
        rcpts, body = await s.phone_answers("Invoice 12 paid")
        assert rcpts == [BOB], body
        assert "Invoice 12 paid" in body and "Other invoice 12 due" in body and "ACME offer" not in body
        assert s.mo() == ("mailed", "other")


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_before_a_refusal_goes_to_the_sms_the_phone_got(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    # Counted as sent before the SMSC answered, the refused SMS would take the answer to acme's.
    async with setup(tmp_path, monkeypatch, protocol) as s:
        await s.acme_then_other(refused=True)
        await s.answer_goes_to_acme("Thanks for the offer", at_once=False)
        await s.gw.until(lambda: sorted(s.gw.states()) == ["delivered", "failed"])


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_after_the_session_dropped_with_the_submit_unanswered_waits_for_its_resend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    # The SMSC took BOB's SMS and the session dropped before its answer: the part waits to go again,
    # and the phone's answer comes after the next login, before the SMSC answered the re-send.
    async with setup(tmp_path, monkeypatch, protocol) as s:
        await s.acme_then_other()
        control = s.gw.daemon.simulator.control_port
        assert (await send_command("127.0.0.1", control, {"op": "drop"}))["ok"]
        part = "SELECT state FROM parts WHERE message_id = 2"
        await s.gw.until(lambda: s.gw.store.db.conn.execute(part).fetchone()[0] != "active")
        await s.gw.until(lambda: s.core._pick(protocol) is not None)
        rcpts, body = await s.phone_answers("Invoice 12 paid")
        assert rcpts == [BOB], body
        assert "Other invoice 12 due" in body and "ACME offer" not in body
        assert s.mo() == ("mailed", "other")


async def test_an_answer_waiting_through_a_restart_is_mailed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The wait is in the MO's row: the daemon stopped while the submit's answer was still due, the
    # next start's first look mails it, once, to the user whose SMS the SMSC took.
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    monkeypatch.setattr(reached, "REPLY_SECONDS", REPLY)
    port = free_port()
    cfg = own_config(tmp_path, "smpp", port)
    # Its re-send after the start waits for a late answer this long, not the shipped 5 minutes.
    link = cfg.smsc[0].model_copy(update={"late_answer_grace_seconds": 1.0})
    cfg = cfg.model_copy(update={"smsc": [link]})
    async with smtp_sink(port) as sink:
        async with running_gateway(cfg) as gw:
            s = Setup(gw, sink, "smpp")
            await s.acme_then_other(60)  # answered by no SMSC of this run
            await asyncio.sleep(REPLY + 0.2)
            command = {"op": "mo", "reply_to_last": True, "text": "Invoice 12 paid"}
            assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
            await gw.until(lambda: s.mo()[0] == "waiting")
            assert answers(sink) == []
        async with running_gateway(cfg) as gw:
            s = Setup(gw, sink, "smpp")
            await gw.until(lambda: bool(answers(sink)), timeout=30)
            await gw.until(lambda: gw.states() == ["delivered", "delivered"])
            [(rcpts, msg)] = answers(sink)
            assert rcpts == [BOB], msg.get_content()
            assert s.mo() == ("mailed", "other")


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_at_once_while_a_newer_sms_is_in_flight_goes_to_the_sms_the_phone_got(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    # other's SMS went to the SMSC a moment ago: the phone cannot have read it yet, so its answer is
    # to acme's. Waited for, the answer went to BOB once the SMSC took his SMS, on other's bill.
    async with setup(tmp_path, monkeypatch, protocol) as s:
        # The phone cannot have read other's SMS for as long as the SMSC keeps its submit's answer, nearly:
        # an answer handled that late on a loaded machine still comes before either (not `REPLY`, 1 s: the
        # answer then rightly waited).
        monkeypatch.setattr(reached, "REPLY_SECONDS", DELAY - 5.0)
        await s.acme_then_other()
        await s.answer_goes_to_acme("Yes please, I take the 10% offer")
