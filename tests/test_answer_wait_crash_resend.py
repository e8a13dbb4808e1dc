"""An answer soon after a re-send the daemon was killed on waits for that re-send (R-3.1).

An SMS whose submit went unanswered (its link lost) waits to go again; the phone may have it from that
submit on, so its claim time (`parts.claimed_at`) stays that first one's when it is claimed again. An
answer waits for the SMSC's answer to a submit only as long as that submit could stay unanswered, counted
from its last submit: in a run, the dispatcher's hand-offs know it. After a crash right after the re-send
nothing did: the first claim stood for the last, the re-send of seconds ago seemed long past its bound,
and the phone's answer to it went at once to the SMS the phone had before, another company's user's.
The last claim is kept now (`parts.last_claimed_at`, migration 71).

A real daemon on a clock the test moves ahead, with its built-in SMSC simulator: the SMS leaves by one
link, the phone's answers come by a second link of the other protocol. The database the first run left
while the re-send was on the wire, as a kill leaves it, is the one the second run starts on. Real SMTP in,
a real relay sink out, the SQLite file.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.conversations import inflight, reached
from gateway.handoffs import Handoffs
from gateway.smtp.accept import accept
from gateway.store.clockstep import ClockStep, Marks
from gateway.store.db import Store
from gateway.store.partnotes import LINK_LOST, NO_LINK_UP, RECOVERED
from gateway.store.records import ClaimedPart
from smsc.simulator.control import send_command
from tests.answer_world import answers
from tests.conftest import running_gateway, smtp_sink
from tests.test_answer_overtakes_submit_answer import Setup
from tests.test_answer_wait_link_down import OTHER, Ahead, outage
from tests.test_store import Clock, acceptance
from tests.test_two_way import BOB

REFUSED = "other"  # the SMS's link's password in the run after the kill (SMPP takes 8 characters)


def kill_copy(db: Path, to: Path) -> None:
    """What a kill would leave of the daemon's database now: what it committed."""
    with closing(sqlite3.connect(db)) as src, closing(sqlite3.connect(to)) as dst:
        src.backup(dst)


def started_from(copy: Path, db: Path) -> None:
    """The database replaced by `copy`, its WAL and shared memory gone with the run that wrote them."""
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    shutil.copyfile(copy, db)


@pytest.mark.parametrize("protocol", ["smpp", "cimd2"])
async def test_an_answer_soon_after_a_resend_the_daemon_was_killed_on_waits_for_that_resend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    killed = tmp_path / "killed.db"
    async with outage(tmp_path, monkeypatch, protocol) as o:
        await o.unanswered_then_down()  # other's SMS claimed, its link lost with its submit unanswered
        o.clock.seconds += o.bound + 10  # down longer than that submit could stay unanswered
        o.link_back()
        await o.s.gw.until(lambda: len(o.s.core.records) == 3, timeout=30)  # sent again, unanswered
        phone, ours = o.s.core.last_sms()
        db, cfg, ahead = o.s.gw.config.db_path, o.s.gw.config, o.clock.seconds
        kill_copy(db, killed)
        await o.cut_off()  # this run's stop is no part of the test: nothing left to wait for
    # The SMS's link refused from the start of the next run: the part waits to go again.
    main = cfg.smsc[0].model_copy(update={"password": SecretStr(REFUSED)})
    cfg = cfg.model_copy(update={"smsc": [main, cfg.smsc[1]]})
    clock = Ahead()
    clock.seconds = ahead
    started_from(killed, db)
    relay = int(cfg.mail.relay.rsplit(":", 1)[1])
    async with smtp_sink(relay, o.s.sink) as sink, running_gateway(cfg, clock=clock) as gw:
        s = Setup(gw, sink, protocol)
        await gw.until(lambda: s.core._pick(OTHER[protocol]) is not None)
        # Recovered as possibly sent, and put back again by the claims that found its link down.
        part = "SELECT state, error FROM parts WHERE message_id = 2"
        await gw.until(lambda: gw.store.db.conn.execute(part).fetchone() == ("deferred", RECOVERED))
        command = {"op": "mo", "source": phone, "destination": ours, "text": "Invoice 12 paid"}
        command["protocol"] = OTHER[protocol]
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await gw.until(lambda: gw.store.db.conn.execute("SELECT 1 FROM mo").fetchone() is not None)
        await gw.until(lambda: s.mo()[0] != "new")
        assert s.mo()[0] == "waiting", answers(sink)  # the re-send may have reached the phone: BOB's
        assert answers(sink) == []
        s.core.cfg = s.core.cfg.model_copy(update={"password": REFUSED})  # the link logs in again
        await gw.until(lambda: bool(answers(sink)), timeout=30)
        [(rcpts, msg)] = answers(sink)
        assert rcpts == [BOB], msg.get_content()
        assert "Other invoice 12 due" in msg.get_content() and "ACME offer" not in msg.get_content()
        assert s.mo() == ("mailed", "other")


async def cut_off_and_sent_again(tmp_path: Path, clock: Clock) -> tuple[Store, ClaimedPart, float]:
    """A store whose one part was claimed, its link lost with the submit unanswered, and claimed again
    600 s later (the clock's time now): the store, the part, and the first claim's time."""
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    await accept(store, acceptance(["+48601123456"]))
    (part,) = store.queue.claim_due(10)
    first = clock.t
    store.queue.release(part.id, delay=0.0, error=LINK_LOST)
    clock.t += 600
    assert [p.id for p in store.queue.claim_due(10)] == [part.id]
    return store, part, first


async def test_the_last_claim_moves_with_a_clock_step_back(tmp_path: Path) -> None:
    # Cut off, sent again 600 s later, the daemon killed; the clock had stepped back 300 s (NTP) right
    # after the re-send. The phone answers it 20 s later: the answer waits. One past the re-send's
    # bound goes at once: left ahead of the clock, the last claim held answers for the step more.
    clock = Clock()
    store, part, first = await cut_off_and_sent_again(tmp_path, clock)
    clock.t -= 300
    store.queue.shift_for_clock_step(ClockStep(300.0, Marks(10**9, 10**9, 10**9)))
    assert store.queue.recover_active() == [part.id]
    wait = 360.0
    since = inflight.may_have_since(store.db.conn, part.message_id, clock.t + 20, wait, Handoffs())
    assert since == first - 300 and since <= clock.t + 20 - reached.REPLY_SECONDS
    past = clock.t + wait + 10
    assert inflight.may_have_since(store.db.conn, part.message_id, past, wait, Handoffs()) is None
    claimed = "SELECT claimed_at, last_claimed_at FROM parts WHERE id = ?"
    assert store.db.conn.execute(claimed, (part.id,)).fetchone() == (first - 300, clock.t)
    store.close()


async def test_claims_that_found_no_link_leave_the_last_submit_as_it_was(tmp_path: Path) -> None:
    # Cut off, sent again, the daemon killed; after the restart its link stays down, and each claim of
    # the part finds no link and puts it back unsent. The last submit is still the re-send: an answer
    # within its bound waits, one past it goes at once. Counted from those claims, every answer waited
    # out the whole bound after each, for as long as the link was down.
    clock = Clock()
    store, part, first = await cut_off_and_sent_again(tmp_path, clock)
    resent = clock.t
    assert store.queue.recover_active() == [part.id]
    for _ in range(3):
        clock.t += 200
        assert [p.id for p in store.queue.claim_due(10)] == [part.id]
        store.queue.release(part.id, delay=0.0, count=False, refusal=NO_LINK_UP)
    wait = 360.0
    assert inflight.may_have_since(store.db.conn, part.message_id, resent + 20, wait, Handoffs()) == first
    assert inflight.may_have_since(store.db.conn, part.message_id, clock.t, wait, Handoffs()) is None
    claimed = "SELECT claimed_at, last_claimed_at FROM parts WHERE id = ?"
    assert store.db.conn.execute(claimed, (part.id,)).fetchone() == (first, resent)
    store.close()
