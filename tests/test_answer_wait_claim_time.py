"""An answer judged by when the SMS it may answer was claimed (R-3.1), not by when it was due.

No phone answers an SMS within seconds of its going (`reached.REPLY_SECONDS`): an answer that comes
sooner is to an older SMS. An SMS accepted while its link was down went when the link came back, long
after it was due: counted from when it was due, an answer to the older SMS that came just after the
newer one went waited for it, and went to its user, of another company, quoting their SMS.

A real daemon with its built-in SMSC simulator over SMPP and CIMD2 (its logins refused for a while,
its submit answers delayed), real SMTP in, a real relay sink out, the SQLite file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.conversations import inflight, reached
from gateway.smtp.accept import accept
from gateway.store.clockstep import ClockStep, Marks
from gateway.store.db import Store
from gateway.store.partnotes import LINK_LOST
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, mail
from tests.test_answer_overtakes_submit_answer import DELAY, Setup, setup
from tests.test_store import Clock, acceptance
from tests.test_two_way import BOB

# How soon after an SMS went the phone may answer it (`reached.REPLY_SECONDS`, shortened): the phone
# answers at once after the SMS went, and after it from when it was due. The SMSC answers the submit
# later still (`DELAY`, within the links' response time-out): an answer handled late on a loaded machine
# comes before both all the same.
REPLY = DELAY - 5.0


async def link_down(s: Setup) -> str:
    """The link dropped, its logins refused from now on (an SMSC's outage): the password it had."""
    password = s.core.cfg.password
    s.core.cfg = s.core.cfg.model_copy(update={"password": password + "-changed"})
    command = {"op": "drop", "protocol": s.protocol}
    assert (await send_command("127.0.0.1", s.gw.daemon.simulator.control_port, command))["ok"]
    await s.gw.until(lambda: s.core._pick(s.protocol) is None)
    return password


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_right_after_an_sms_held_by_an_outage_went_goes_to_the_sms_the_phone_had(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    async with setup(tmp_path, monkeypatch, protocol) as s:
        monkeypatch.setattr(reached, "REPLY_SECONDS", REPLY)
        await s.acme_delivered()
        password = await link_down(s)
        msg = mail(f"601222222@{DOMAIN}", body="Other invoice 12 due", subject=f"From {BOB}")
        msg.replace_header("From", BOB)
        assert (await s.gw.send(msg, sender=BOB)).error is None
        await asyncio.sleep(REPLY + 0.5)  # due this long ago: long enough to be read, had it gone
        s.delay_submit_answers(DELAY)
        s.core.cfg = s.core.cfg.model_copy(update={"password": password})  # the link is back
        await s.gw.until(lambda: len(s.core.records) == 2)
        # The phone answers acme's SMS at once: BOB's went a moment ago.
        await s.answer_goes_to_acme("Yes please, I take the 10% offer")
        claimed = "SELECT claimed_at > next_attempt_at + ? FROM parts WHERE message_id = 2"
        assert s.gw.store.db.conn.execute(claimed, (REPLY,)).fetchone() == (1,)


async def test_a_claim_keeps_the_time_of_an_earlier_submit_that_may_have_reached_the_phone(
    tmp_path: Path,
) -> None:
    # Claimed again after its submit was cut off, a part may be on the phone since that submit: its claim
    # time stays. One handed back for another cause (a throttle) never reached the phone: claimed anew.
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    await accept(store, acceptance(["+48601123456", "+48601123457"]))
    clock.t += 10
    first = clock.t
    cut, throttled = store.queue.claim_due(10)
    store.queue.release(cut.id, delay=0.0, error=LINK_LOST)
    store.queue.release(throttled.id, delay=0.0, error="ESME_RTHROTTLED (0x58)")
    clock.t += 20
    assert len(store.queue.claim_due(10)) == 2
    claimed = "SELECT claimed_at FROM parts WHERE id = ?"
    assert store.db.conn.execute(claimed, (cut.id,)).fetchone() == (first,)
    assert store.db.conn.execute(claimed, (throttled.id,)).fetchone() == (clock.t,)


async def test_a_clock_step_back_moves_the_claim_time_with_the_waits(tmp_path: Path) -> None:
    # Accepted during an outage, claimed when the link came back and cut off; the clock steps back 300 s
    # (NTP), the part goes again and the phone answers 10 s later, before the SMSC answers the re-send.
    # The phone may have the SMS since the first submit: the answer waits. Left ahead of the clock, the
    # claim time held no answer for the whole step.
    clock = Clock()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    await accept(store, acceptance(["+48601123456"]))
    clock.t += 600
    (part,) = store.queue.claim_due(10)
    store.queue.release(part.id, delay=0.0, error=LINK_LOST)
    clock.t += 10 - 300
    store.queue.shift_for_clock_step(ClockStep(300.0, Marks(10**9, 10**9, 10**9)))
    claimed = "SELECT claimed_at FROM parts WHERE id = ?"
    assert store.db.conn.execute(claimed, (part.id,)).fetchone() == (clock.t - 10,)
    clock.t += 30
    assert [p.id for p in store.queue.claim_due(10)] == [part.id]
    at = clock.t + 10
    since = inflight.may_have_since(store.db.conn, part.message_id, at, 360.0, None)
    assert since is not None and since <= at - reached.REPLY_SECONDS
    store.close()
