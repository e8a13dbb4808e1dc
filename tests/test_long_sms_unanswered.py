"""A part of a long SMS its link left unanswered: the SMS stays with that link.

One lost submit answer (part 2 unanswered, the link up and answering all else) moved the whole SMS to
another SMSC at part 2's re-send, after the late-answer grace: the phone had parts 1 and 2 from the
first SMSC and all three again from the other, under another reference, billed by both operators.
An unanswered submit no longer starts the wait for the link (`LinkChoice.answered`), and nothing
moves while a late answer to a part of the SMS may still come (`LinkChoice.moving`), even once a
temporary refusal started the wait.

Real SMPP SMSCs (`tests/fakes/smsc.py`) over TCP, the daemon in-process, a real SMTP client and
SQLite file; time moved by the injected clock.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Config, parse_config
from gateway.linkchoice import _LongSms
from gateway.longsms import LONG_SMS_WAIT_SECONDS
from smsc.simulator.smpp_server import SmppSession
from smsc.simulator.submitted import SubmittedSms
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.smsc import FakeSMSC, HappySMSC
from tests.test_long_sms_one_link import LONG_TEXT, NUMBER, parts_seen
from tests.test_long_sms_tied_wait import ESME_RSYSERR, Clock
from tests.test_policy import to


class Troubled(FakeSMSC):
    """Leaves the first submit of part `silent` unanswered (a lost submit_resp) and refuses part
    `refused` for now (ESME_RSYSERR) while `refusing()`; answers all else."""

    def __init__(self, silent: int, refused: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.silent_part, self.refused_part = silent, refused
        self.silent: list[int] = []
        self.refused = 0
        self.refusing: Callable[[], bool] = lambda: True

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        number = sms.udh[-1] if sms.udh else 0
        if number == self.refused_part and self.refusing():
            self.refused += 1
            session.answer_submit(seq, None, status=ESME_RSYSERR)
            return
        if number == self.silent_part and not self.silent:
            self.silent.append(seq)
            return
        await super().on_submit(session, seq, sms)


def config(
    tmp_path: Path, plus: FakeSMSC, orange: FakeSMSC, window: int, plus_extra: str = "", **kw: Any
) -> Config:
    """plus for +48601 sending `window` parts at a time, orange the default link. A whole window of
    submits unanswered closes the session."""
    orange_link = f'\n[[smsc]]\nname = "orange"\ntype = "smpp"\nport = {orange.port}\n'
    orange_link += 'system_id = "smsgw"\npassword = "secret"\n'
    extra = 'prefixes = ["+48601"]\n' + plus_extra + orange_link
    text = config_text(tmp_path, smsc_port=plus.port, smsc_extra=extra, **kw)
    text = text.replace('name = "main"', 'name = "plus"', 1).replace("window = 10", f"window = {window}", 1)
    if plus_extra:  # submits answered in time or not at all: their timeout kept short
        text = text.replace("response_timeout_seconds = 5", "response_timeout_seconds = 0.5", 1)
    return parse_config(text, source="t", base_dir=tmp_path)


def state_of(gw: Any, seq: int) -> str | None:
    row = gw.store.db.conn.execute("SELECT state FROM parts WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else str(row[0])


@pytest.mark.parametrize(("window", "silent"), [(1, 3), (2, 2)])
async def test_one_unanswered_part_goes_again_by_its_link(tmp_path: Path, window: int, silent: int) -> None:
    """Window 1, the last part unanswered: a whole window unanswered, the session is made again.
    Window 2, part 2 unanswered: the session stays, part 3 taken before part 2's response timeout."""
    clock = Clock()
    async with Troubled(silent=silent) as plus, HappySMSC() as orange:
        # No receipt comes for the part left unanswered: its hold for one after the new session (on the
        # loop's clock) would only slow the test; the grace it checks runs on the test's clock.
        cfg = config(tmp_path, plus, orange, window)
        cfg.smsc[0] = cfg.smsc[0].model_copy(update={"lost_submit_settle_seconds": 0})
        async with running_gateway(cfg, clock=clock) as gw:
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            # The part unanswered (response timeout 5 s) waits out the late-answer grace (300 s), the
            # other two taken.
            others = [n for n in (1, 2, 3) if n != silent]
            states = lambda: [state_of(gw, n) for n in (*others, silent)]  # noqa: E731
            await gw.until(lambda: states() == ["delivered", "delivered", "deferred"], timeout=30)
            assert plus.silent
            clock.offset += 301  # the grace over with no answer: the part goes again
            await gw.until(lambda: gw.states() == ["delivered"], timeout=60)
    assert orange.received == []
    reference = parts_seen(plus)[0][0]
    assert sorted(set(parts_seen(plus))) == [(reference, n) for n in (1, 2, 3)]


async def test_no_move_while_a_late_answer_may_come(tmp_path: Path) -> None:
    clock = Clock()
    async with Troubled(silent=3, refused=2) as plus, HappySMSC() as orange:
        plus.refusing = lambda: clock.offset < LONG_SMS_WAIT_SECONDS
        async with running_gateway(config(tmp_path, plus, orange, 2), clock=clock) as gw:
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            # Part 2 refused for now starts the wait; part 3 then goes unanswered.
            await gw.until(lambda: plus.silent and state_of(gw, 3) == "deferred", timeout=30)
            assert gw.daemon.dispatcher.choice.waiting() == 1
            # Past the wait: part 2 is due again, part 3's answer may still come.
            clock.offset += LONG_SMS_WAIT_SECONDS + 1
            await gw.until(lambda: state_of(gw, 2) == "delivered", timeout=30)
            clock.offset += 300  # part 3's grace over: it goes again by plus
            await gw.until(lambda: gw.states() == ["delivered"], timeout=60)
    assert orange.received == []


class StuckAfterPartOne(FakeSMSC):
    """Takes part 1, then answers no submit at all, its session up: binds and keep-alives answered."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignored = 0
        self.by: list[SmppSession] = []  # the sessions submits came by

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if session not in self.by:
            self.by.append(session)
        if sms.udh and sms.udh[-1] == 1 and not self.received:
            await super().on_submit(session, seq, sms)
            return
        self.ignored += 1


async def test_a_link_up_answering_no_submit_lets_the_sms_move(tmp_path: Path) -> None:
    """The SMSC took part 1 and answers nothing since, its session up (keep-alives answered). An
    unanswered submit started no wait for the link: parts 2 and 3 went to it until held, while orange
    was up. Now the wait starts, and the SMS moves once no late answer can come: here when the
    session ends at a window (10) of submits unanswered in a row, the fifth time each went."""
    clock = Clock()
    async with StuckAfterPartOne() as plus, HappySMSC() as orange:
        # The submits left unanswered when the session ends go on at once (this SMSC sends no receipt
        # to wait for): the hold of `lost_submit_settle_seconds` runs on the loop's clock, not the test's.
        grace = "late_answer_grace_seconds = 30\nlost_submit_settle_seconds = 0\n"
        async with running_gateway(config(tmp_path, plus, orange, 10, plus_extra=grace), clock=clock) as gw:
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            deferred = lambda: state_of(gw, 2) == state_of(gw, 3) == "deferred"  # noqa: E731
            for sent in range(1, 6):
                await gw.until(lambda: plus.ignored == 2 * sent and deferred(), timeout=30)  # noqa: B023
                assert orange.received == []
                clock.offset += 60  # its grace over: each goes again
            await gw.until(lambda: gw.states() == ["delivered"], timeout=60)
    assert plus.ignored == 10
    assert len(plus.by) == 1  # its session ended by the gateway at the tenth submit unanswered in a row
    reference = parts_seen(orange)[0][0]
    assert sorted(parts_seen(orange)) == [(reference, n) for n in (1, 2, 3)]


class AnswersLater(StuckAfterPartOne):
    """Takes part 1; keeps the submits of the others unanswered until `answer` is called."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kept: dict[int, tuple[SmppSession, int, SubmittedSms]] = {}

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        ignored = self.ignored
        await super().on_submit(session, seq, sms)
        if self.ignored > ignored:
            self.kept[sms.udh[-1]] = (session, seq, sms)

    async def answer(self, number: int) -> None:
        """Accept the kept submit of part `number` now (its receipt follows)."""
        session, seq, sms = self.kept.pop(number)
        await SmppSession.on_submit_sm(session, seq, sms)


async def test_a_late_acceptance_after_the_move_is_the_old_sms(tmp_path: Path) -> None:
    """The SMS moved (written) before the late acceptance of part 3's submit was: its settle found the
    part waiting to go again under the new reference and set it sent by plus, under the old one; it
    never went with the rest, and the phone had no whole SMS from either SMSC."""
    clock = Clock()
    async with AnswersLater() as plus, HappySMSC() as orange:
        grace = "late_answer_grace_seconds = 30\n"
        async with running_gateway(config(tmp_path, plus, orange, 10, plus_extra=grace), clock=clock) as gw:
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            await gw.until(lambda: plus.ignored == 2 and state_of(gw, 2) == state_of(gw, 3) == "deferred")
            # The move as `LinkChoice.moving` lets go of the SMS, its write first; then the answer.
            choice, store = gw.daemon.dispatcher.choice, gw.store
            mid = store.db.conn.execute("SELECT message_id FROM parts LIMIT 1").fetchone()[0]
            choice._long[mid] = _LongSms("", shunned="plus")
            await store.write(lambda: choice.send_again(store, mid, "plus", LONG_SMS_WAIT_SECONDS))
            await plus.answer(3)
            await gw.until(lambda: gw.states() == ["delivered"], timeout=30)
            links = [row[0] for row in store.db.conn.execute("SELECT link FROM parts ORDER BY seq")]
    assert links == ["orange"] * 3
    reference = parts_seen(orange)[0][0]
    assert sorted(parts_seen(orange)) == [(reference, n) for n in (1, 2, 3)]
