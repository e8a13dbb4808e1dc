"""A late answer to a part held at its last attempt: an acceptance settles it, a refusal leaves it held.

A part whose MAX_ATTEMPTS-th submit went unanswered waits on hold (it may have reached the phone).
No one waited for the SMSC's answer to that submit: when the SMSC took it after all, the part stayed
held though the SMSC had it, its delivery report matched nothing, and a `queue retry` sent the phone
a second copy. Now an acceptance that comes within the link's late-answer grace settles it as
`submitted` under the SMSC's message id (its receipt then makes it `delivered`); a refusal, however
late, leaves it on hold.

A real gateway on 127.0.0.1 and fake SMPP SMSCs on TCP that answer after the response timeout; the
part's attempts are set in the real SQLite file before the link comes up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from billing_reports import mtlate
from gateway.config import Config
from gateway.outcomes import MAX_ATTEMPTS
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import DOMAIN, Running, free_port, mail, make_config, running_gateway
from tests.fakes.smsc import FakeSMSC, LateAnswerSMSC

ESME_RSYSERR = 0x08
ESME_RSUBMITFAIL = 0x45
NUMBER = "601300000"


class LateRefusingSMSC(FakeSMSC):
    """Answers every submit_sm `status` only `answer_after` seconds later: refused, nothing taken."""

    def __init__(self, status: int, answer_after: float = 1.0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.status, self.answer_after = status, answer_after

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)
        session.spawn(self._refuse_later(session, seq))

    async def _refuse_later(self, session: SmppSession, seq: int) -> None:
        await asyncio.sleep(self.answer_after)
        session.answer_submit(seq, None, status=self.status, report=False)


def slow_link(tmp_path: Path, port: int) -> Config:
    """Answers after 1 s count as unanswered after 0.3 s, and are still taken for 60 s after."""
    cfg = make_config(tmp_path, smsc_port=port)
    link = cfg.smsc[0].model_copy(update={"response_timeout_seconds": 0.3, "late_answer_grace_seconds": 60})
    return cfg.model_copy(update={"smsc": [link]})


async def at_last_attempt(gw: Running) -> int:
    """A mail accepted while no SMSC listens, its part set at its last attempt but one; its id."""
    assert (await gw.send(mail(f"{NUMBER}@{DOMAIN}", "Gate code 4711"))).error is None
    db = gw.store.db.conn
    await gw.until(lambda: gw.states() == ["queued"] or gw.states() == ["deferred"])

    def last_but_one() -> int:
        db.execute("UPDATE parts SET attempts = ?", (MAX_ATTEMPTS - 1,))
        return int(db.execute("SELECT id FROM parts").fetchone()[0])

    return await gw.store.write(last_but_one)


def part_row(gw: Running) -> tuple[str, str | None, str | None, int]:
    row = gw.store.db.conn.execute("SELECT state, smsc_id, error, attempts FROM parts").fetchone()
    return row[0], row[1], row[2], row[3]


async def test_a_late_acceptance_settles_a_part_held_at_its_last_attempt(tmp_path: Path) -> None:
    port = free_port()
    with structlog.testing.capture_logs() as logs:
        async with running_gateway(slow_link(tmp_path, port)) as gw:
            part = await at_last_attempt(gw)
            async with LateAnswerSMSC(answer_after=1.0, port=port) as smsc:
                await gw.until(lambda: part_row(gw)[0] == "hold", timeout=15)
                # The answer comes 0.7 s after the hold, then the receipt: the part was taken.
                await gw.until(lambda: gw.states() == ["delivered"], timeout=15)
                _state, smsc_id, error, attempts = part_row(gw)
                assert smsc_id is not None and error is None and attempts == MAX_ATTEMPTS
                assert gw.store.db.conn.execute("SELECT state, reason FROM messages").fetchone() == (
                    "delivered",
                    None,
                )
                unmatched = "SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL"
                assert gw.store.db.conn.execute(unmatched).fetchone()[0] == 0
                # Nothing for a `queue retry` to send again: the phone gets one copy.
                [(message,)] = gw.store.db.conn.execute("SELECT id FROM messages")
                assert (
                    await gw.store.write(
                        lambda: gw.store.admin.retry_message(message, before_reset=mtlate.retried)
                    )
                    == 0
                )
                await asyncio.sleep(0.3)
                assert len(smsc.received) == 1
    assert [e["part"] for e in logs if e["event"] == "mt.hold"] == [part]
    assert [e["part"] for e in logs if e["event"] == "mt.hold_settled_late"] == [part]
    assert not [e for e in logs if e["event"] == "mt.possible_duplicate"]


async def test_a_late_refusal_leaves_a_part_held_at_its_last_attempt_held(tmp_path: Path) -> None:
    port = free_port()
    for status in (ESME_RSUBMITFAIL, ESME_RSYSERR):  # refused for good, refused for now
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(slow_link(tmp_path / str(status), port)) as gw:
                part = await at_last_attempt(gw)
                async with LateRefusingSMSC(status, answer_after=1.0, port=port) as smsc:
                    await gw.until(lambda: part_row(gw)[0] == "hold", timeout=15)
                    held = part_row(gw)
                    await gw.until(lambda: any(e["event"] == "mt.late_answer" for e in logs), timeout=15)
                    await asyncio.sleep(0.3)  # its write, had it changed anything
                    assert part_row(gw) == held
                    assert gw.store.db.conn.execute("SELECT state FROM messages").fetchone() == ("hold",)
                    assert len(smsc.received) == 1
        assert [e["part"] for e in logs if e["event"] == "mt.late_refusal_held"] == [part]
