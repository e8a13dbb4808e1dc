"""The rest of a long SMS tied to the link that took a part of it: what ends the wait, and what the
waiting parts say.

A link up that refuses part 2 for now on every try (ESME_RSYSERR) kept the SMS for ~10 hours of
back-off, then held it, while another link was up: it now goes again whole by the other link once it
waited LONG_SMS_WAIT_SECONDS, and that link's SMSC is passed over. A throttle is waited out. A link
renamed (same SMSC bind) goes on with the rest under the same reference; it was taken for gone, and
the whole SMS went again to the same SMSC. A part waiting for its link down said "no link up" with
another up. An SMS a part of which is on hold, its link gone, was claimed and handed back every second
until it expired: its waiting parts now wait unclaimed for an admin's retry.

Real SMPP SMSCs (`tests/fakes/smsc.py`, the built-in simulator's server) over TCP, the daemon
in-process, a real SMTP client and SQLite file; time moved by the injected clock.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from billing_reports import mtlate
from gateway.config import Config, parse_config
from gateway.longsms import LONG_SMS_WAIT_SECONDS
from gateway.store.partnotes import TIED_WAIT, WITH_STUCK_PART
from smsc.simulator.smpp_server import SmppSession
from smsc.simulator.submitted import SubmittedSms
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.smsc import ESME_RTHROTTLED, FakeSMSC, HappySMSC
from tests.test_long_sms_one_link import LONG_TEXT, NUMBER, PartTwoTrouble, part_rows, parts_seen
from tests.test_policy import to

ESME_RSYSERR = 0x08


class PartTwoRefused(FakeSMSC):
    """Answers part 2 of a long SMS with `status` while `refusing` (and `then()` after each)."""

    def __init__(self, status: int = ESME_RSYSERR, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.status, self.refusing, self.refused = status, True, 0
        self.then = lambda: None

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if self.refusing and sms.udh and sms.udh[-1] == 2:
            self.refused += 1
            session.answer_submit(seq, None, status=self.status)
            self.then()
            return
        await super().on_submit(session, seq, sms)


def links(tmp_path: Path, plus: FakeSMSC, orange: FakeSMSC, name: str = "plus") -> Config:
    """`name` for +48601 (part 1 goes there, one part at a time), orange the default link."""
    orange_link = f'\n[[smsc]]\nname = "orange"\ntype = "smpp"\nport = {orange.port}\n'
    orange_link += 'system_id = "smsgw"\npassword = "secret"\n'
    text = config_text(tmp_path, smsc_port=plus.port, smsc_extra='prefixes = ["+48601"]\n' + orange_link)
    text = text.replace('name = "main"', f'name = "{name}"', 1).replace("window = 10", "window = 1", 1)
    return parse_config(text, source="t", base_dir=tmp_path)


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


async def test_a_link_up_refusing_the_rest_has_the_whole_sms_go_by_the_other(tmp_path: Path) -> None:
    clock = Clock()
    async with PartTwoRefused() as plus, HappySMSC() as orange:
        async with running_gateway(links(tmp_path, plus, orange), clock=clock) as gw:
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            # Part 3 taken meanwhile starts the wait again: from part 2's next refusal on.
            waiting = gw.daemon.dispatcher.choice.waiting
            await gw.until(lambda: len(plus.received) == 2 and waiting() == 1, timeout=30)
            assert orange.received == []
            clock.offset += LONG_SMS_WAIT_SECONDS + 1  # part 2 comes due again within that wait
            await gw.until(lambda: gw.states() == ["delivered"], timeout=30)
            rows = part_rows(gw)
            [concat_ref] = gw.store.db.conn.execute("SELECT concat_ref FROM messages").fetchone()
    assert sorted(parts_seen(orange)) == [(concat_ref, 1), (concat_ref, 2), (concat_ref, 3)]
    assert {ref for ref, _seq in parts_seen(plus)} != {concat_ref}  # the move left plus aside
    assert rows == [(1, "delivered", "orange"), (2, "delivered", "orange"), (3, "delivered", "orange")]


async def test_a_throttle_of_the_link_is_waited_out(tmp_path: Path) -> None:
    clock = Clock()
    async with PartTwoRefused(ESME_RTHROTTLED) as plus, HappySMSC() as orange:

        def later() -> None:  # each throttle far past the wait; the third part 2 is taken
            clock.offset += LONG_SMS_WAIT_SECONDS + 1
            plus.refusing = plus.refused < 3

        plus.then = later
        async with running_gateway(links(tmp_path, plus, orange), clock=clock) as gw:
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            await gw.until(lambda: gw.states() == ["delivered"], timeout=60)
            rows = part_rows(gw)
    assert plus.refused == 3 and orange.received == []
    assert rows == [(1, "delivered", "plus"), (2, "delivered", "plus"), (3, "delivered", "plus")]


async def test_a_renamed_link_goes_on_with_the_rest_under_the_same_reference(tmp_path: Path) -> None:
    async with PartTwoRefused() as plus, HappySMSC() as orange:
        async with running_gateway(links(tmp_path, plus, orange)) as gw:
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            await gw.until(lambda: plus.refused >= 1 and len(plus.received) == 2, timeout=20)
        plus.refusing = False
        async with running_gateway(links(tmp_path, plus, orange, "plus2")) as gw:
            await gw.until(lambda: gw.states() == ["delivered"], timeout=60)
            rows = part_rows(gw)
    assert orange.received == []
    [ref] = {ref for ref, _seq in parts_seen(plus)}
    assert sorted(parts_seen(plus)) == [(ref, 1), (ref, 2), (ref, 3)]  # none sent twice
    assert rows[1] == (2, "delivered", "plus2")  # the one still to go when the link was renamed


async def test_a_part_waiting_for_its_link_down_names_it(tmp_path: Path) -> None:
    async with PartTwoTrouble("gone") as plus, HappySMSC() as orange:
        async with running_gateway(links(tmp_path, plus, orange)) as gw:
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            await gw.until(lambda: plus.troubled == 1 and not plus.sessions)
            sql = "SELECT error FROM parts WHERE seq = 3 AND state = 'deferred'"  # 2 was on the wire
            note = TIED_WAIT.format("plus", "down")
            await gw.until(lambda: gw.store.db.conn.execute(sql).fetchall() == [(note,)])
    assert orange.received == []


async def test_a_long_sms_with_a_part_on_hold_waits_for_a_retry_and_then_moves(tmp_path: Path) -> None:
    clock = Clock()
    async with HappySMSC() as first, HappySMSC() as second:
        text = config_text(tmp_path, smsc_port=first.port)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            await first.wait_until(lambda: len(first.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            await gw.until(lambda: len(first.received) == 3)
        # As when part 2 was held after its 50 attempts and the link then removed from the config.
        with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
            conn.execute(
                "UPDATE parts SET state = CASE seq WHEN 2 THEN 'hold' ELSE 'queued' END, link = NULL,"
                " smsc_id = NULL, submitted_at = NULL, done_at = NULL,"
                " error = CASE seq WHEN 2 THEN '50 attempts failed; last: ESME_RSYSERR (0x08)' END"
                " WHERE seq > 1"
            )
        removed = text.replace('name = "main"', 'name = "other"', 1).replace(
            f"port = {first.port}", f"port = {second.port}", 1
        )
        async with running_gateway(parse_config(removed, base_dir=tmp_path), clock=clock) as gw:
            choice, conn = gw.daemon.dispatcher.choice, gw.store.db.conn
            await gw.until(lambda: choice.waiting() == 1)
            clock.offset += LONG_SMS_WAIT_SECONDS + 1
            sql = "SELECT state, error, next_attempt_at >= expires_at FROM parts WHERE seq = 3"
            await gw.until(lambda: conn.execute(sql).fetchone() == ("deferred", WITH_STUCK_PART.format(2), 1))
            assert second.received == []
            await gw.store.write(lambda: gw.store.admin.retry_message(1, before_reset=mtlate.retried))
            gw.daemon.dispatcher.wake()
            await gw.until(lambda: choice.waiting() == 1)  # the gone link, waited for again
            clock.offset += LONG_SMS_WAIT_SECONDS + 1
            await gw.until(lambda: len(second.received) == 3, timeout=30)
            [concat_ref] = conn.execute("SELECT concat_ref FROM messages").fetchone()
    assert sorted(parts_seen(second)) == [(concat_ref, 1), (concat_ref, 2), (concat_ref, 3)]
