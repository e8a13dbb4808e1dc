"""An SMS the SMSC takes but never answers is held after a few copies; a late answer's id is the part's too.

Against a scripted SMPP SMSC two things showed. An SMSC that never answered the submits of
one SMS got it again after each response timeout and late-answer grace, backing off, until its 50
attempts were spent: some 50 copies on the phone within the validity. Now the part is held at the
fifth unanswered send in a row, once other SMS on the link were answered meanwhile (an SMSC that
answers nothing at all holds no SMS so soon). And a submit answered only after its re-send had been
taken (under another id) had its late id logged and dropped: the receipt of that copy, which reached
the phone, matched nothing, and the other copy's failure failed the SMS and bounced it to its sender.

A real gateway on 127.0.0.1, fake SMPP SMSCs on TCP, the real SQLite file and an SMTP sink for bounces.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.config import Config
from gateway.retryafter import HOLD_AFTER_LOSSES
from smsc.base import ReportStatus
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import DOMAIN, Running, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import FakeSMSC, SilentSMSC

MUTE = "601123777"  # the SMS the SMSC never answers
OTHER = "601123700"  # the link's other SMS, answered


class MuteSMSC(FakeSMSC):
    """Takes every submit; answers all but those to `mute`, which it keeps without a word."""

    def __init__(self, mute: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mute = mute

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if sms.destination.endswith(self.mute):
            self.server.record(sms)
            return
        await super().on_submit(session, seq, sms)

    def copies(self, number: str) -> int:
        return sum(1 for sms in self.received if sms.destination.endswith(number))


class FirstUnansweredSMSC(FakeSMSC):
    """Leaves the first submit unanswered (kept for `answer_first`), answers later copies at once
    with ids of its own, and sends receipts only when told (`report`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(first_id=1000, **kwargs)
        self.first: tuple[SmppSession, int, SubmittedSms] | None = None
        self.answered: list[str] = []  # the ids given in time

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)
        if self.first is None:
            self.first = (session, seq, sms)
            return
        verdict = self.core.on_submit(sms)
        session.answer_submit(seq, verdict, report=False)
        self.answered.append(self.server.format_id(verdict.message_id))

    def answer_first(self, message_id: str) -> None:
        assert self.first is not None
        session, seq, _sms = self.first
        session.send_pdu("submit_sm_resp", seq, 0, message_id=message_id)

    async def report(self, message_id: str, status: ReportStatus) -> None:
        assert self.first is not None
        session, _seq, sms = self.first
        await session.send_report(message_id, sms.source, sms.destination, status, datetime.now(UTC))


def slow_link(tmp_path: Path, port: int, grace: float, **gw: Any) -> Config:
    """Submits unanswered after 0.2 s, their late answers waited for `grace` s, retries soon."""
    cfg = make_config(tmp_path, smsc_port=port, **gw)
    timers = {"response_timeout_seconds": 0.2, "late_answer_grace_seconds": grace}
    link = cfg.smsc[0].model_copy(update=timers)
    return cfg.model_copy(
        update={"smsc": [link], "gateway": cfg.gateway.model_copy(update={"retry_base_seconds": 0.05})}
    )


def part_row(gw: Running) -> tuple[str, str | None, str | None]:
    row = gw.store.db.conn.execute("SELECT state, smsc_id, error FROM parts ORDER BY id LIMIT 1").fetchone()
    return row[0], row[1], row[2]


async def test_an_sms_the_smsc_never_answers_is_held_after_five_copies(tmp_path: Path) -> None:
    port = free_port()
    with structlog.testing.capture_logs() as logs:
        async with MuteSMSC(MUTE, port=port) as smsc, running_gateway(slow_link(tmp_path, port, 0.3)) as gw:
            assert (await gw.send(mail(f"{MUTE}@{DOMAIN}", "Never answered"))).error is None
            await smsc.wait_until(lambda: smsc.copies(MUTE) >= 1)

            held = asyncio.Event()

            async def others() -> None:  # the link answers other SMS meanwhile
                for i in range(60):
                    if held.is_set():
                        return
                    await gw.send(mail(f"{OTHER}@{DOMAIN}", f"Answered {i}"))
                    await asyncio.sleep(0.3)

            traffic = asyncio.create_task(others())
            try:
                await gw.until(lambda: part_row(gw)[0] == "hold", timeout=30)
                await asyncio.sleep(1.5)  # a copy more would have gone by now (grace 0.3 s)
            finally:
                held.set()
                await traffic
            state, _smsc_id, reason = part_row(gw)
            assert smsc.copies(MUTE) == HOLD_AFTER_LOSSES
            assert state == "hold" and reason is not None
            assert f"the SMSC answered none of the {HOLD_AFTER_LOSSES} submits of this SMS" in reason
            assert "link main" in reason and "it may have reached the phone each time" in reason
            counts = await gw.store.write(lambda: gw.store.admin.queue_counts())
            assert counts["parts"]["hold"] == 1 and counts["messages"]["hold"] == 1
    holds = [e for e in logs if e["event"] == "mt.hold_unanswered"]
    assert [(e["sends"], e["link"]) for e in holds] == [(HOLD_AFTER_LOSSES, "main")]


async def test_an_smsc_that_answers_nothing_holds_no_sms_at_the_fifth_copy(tmp_path: Path) -> None:
    # No submit on the link answered: no proof against this SMS, which backs off on (held only at
    # twice as many sends, as a session killer without that proof is).
    port = free_port()
    async with SilentSMSC(port=port) as smsc, running_gateway(slow_link(tmp_path, port, 0.3)) as gw:
        assert (await gw.send(mail(f"{MUTE}@{DOMAIN}", "Into the void"))).error is None
        await smsc.wait_for(HOLD_AFTER_LOSSES + 1, timeout=30)
        assert part_row(gw)[0] != "hold"


@pytest.mark.parametrize(
    "reports",
    [
        pytest.param([("FIRST1", "delivered"), ("copy", "failed")], id="delivered-copy-first"),
        pytest.param([("copy", "failed"), ("FIRST1", "delivered")], id="failed-copy-first"),
        pytest.param([("copy", "delivered"), ("FIRST1", "failed")], id="in-time-copy-delivered"),
        pytest.param([("FIRST1", "failed"), ("copy", "failed")], id="both-failed"),
    ],
)
async def test_a_late_answers_id_still_matches_its_receipt(
    tmp_path: Path, reports: list[tuple[str, str]]
) -> None:
    port, sink_port = free_port(), free_port()
    both_failed = all(status == "failed" for _id, status in reports)
    with structlog.testing.capture_logs() as logs:
        async with (
            FirstUnansweredSMSC(port=port) as smsc,
            smtp_sink(sink_port) as sink,
            running_gateway(slow_link(tmp_path, port, 1.0, relay_port=sink_port)) as gw,
        ):
            assert (await gw.send(mail(f"{MUTE}@{DOMAIN}", "Late after resend"))).error is None
            # Unanswered at 0.2 s, sent again after the 1 s grace and taken at once.
            await gw.until(lambda: part_row(gw)[0] == "submitted", timeout=10)
            [copy] = smsc.answered
            smsc.answer_first("FIRST1")  # the first copy's answer, late (taken up to 2.2 s)
            # Its write done (the link reads ids case-blind: "first1").
            await gw.until(lambda: any(e.get("smsc_id") == "first1" and e["event"] == "mt.possible_duplicate"
                                       for e in logs), timeout=10)  # fmt: skip
            db = gw.store.db.conn
            for n, (message_id, status) in enumerate(reports, 1):
                await smsc.report(copy if message_id == "copy" else message_id, ReportStatus(status))
                await gw.until(lambda n=n: db.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] == n)
            final = "failed" if both_failed else "delivered"
            await gw.until(lambda: part_row(gw)[0] == final, timeout=10)
            assert db.execute("SELECT state FROM messages").fetchone() == (final,)
            matched = db.execute("SELECT smsc_id FROM dlrs WHERE part_id IS NOT NULL ORDER BY id").fetchall()
            # The first receipt matched always; the second too, unless a copy was delivered already.
            assert [r[0] for r in matched][:1] == [copy if reports[0][0] == "copy" else "first1"]
            if both_failed or reports[0][1] == "failed":
                assert len(matched) == 2
            # The sender is told of a failure only when both copies failed, and once.
            assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == (1 if both_failed else 0)
            if both_failed:
                await sink.wait(1, timeout=10)
            assert len(smsc.received) == 2


async def test_a_receipt_that_overtook_the_late_answer_is_applied_with_it(tmp_path: Path) -> None:
    # The first copy's receipt comes before its late answer: kept unmatched, it is the part's once
    # the answer names its id, and the other copy's failure after it changes nothing.
    port = free_port()
    with structlog.testing.capture_logs() as logs:
        async with (
            FirstUnansweredSMSC(port=port) as smsc,
            running_gateway(slow_link(tmp_path, port, 1.0)) as gw,
        ):
            assert (await gw.send(mail(f"{MUTE}@{DOMAIN}", "Late after resend"))).error is None
            await gw.until(lambda: part_row(gw)[0] == "submitted", timeout=10)
            [copy] = smsc.answered
            db = gw.store.db.conn
            await smsc.report("FIRST1", ReportStatus.DELIVERED)
            await gw.until(
                lambda: db.execute("SELECT COUNT(*) FROM dlrs WHERE part_id IS NULL").fetchone()[0] == 1
            )
            smsc.answer_first("FIRST1")
            await gw.until(lambda: part_row(gw)[0] == "delivered", timeout=10)
            await smsc.report(copy, ReportStatus.FAILED)
            await gw.until(lambda: db.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] == 2)
            assert db.execute("SELECT state FROM messages").fetchone() == ("delivered",)
            assert db.execute("SELECT smsc_id FROM dlrs WHERE part_id IS NOT NULL").fetchall() == [
                ("first1",)
            ]
            assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    assert [e["part"] for e in logs if e["event"] == "mt.late_answer"] == [1]
