"""A long SMS whose first part failed, told, and then reached the phone by a copy accepted late.

Part 1 goes unanswered, its re-send is refused for good and the message fails, bounced. Then the SMSC
answers the first copy after all and reports it DELIVRD. What the message becomes depends on part 2:
- never sent (cancelled by part 1's failure): the message stays failed, its reason saying part 1
  arrived after all and part 2 was not sent. It went "cancelled" with no reason (a cancel nobody
  made, billed so) and the log said the phone had the SMS.
- sent, its receipt still to come: the message waits for it; delivered, the sender bounced is told it
  reached the phone after all. It ended delivered by the ordinary path and nobody was told.

A real gateway on 127.0.0.1, a scripted SMPP SMSC on TCP, the real SQLite file and an SMTP sink.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path

import structlog

from gateway.bouncewords import AFTER_FAILURE
from smsc.base import ReportStatus
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_unanswered_copies import MUTE, FirstUnansweredSMSC, slow_link

ESME_RINVDSTADR = 0x0B  # a refusal for good
ESME_RMSGQFUL = 0x14  # for the time being: the part waits for its next try


class LongSMSC(FirstUnansweredSMSC):
    """Leaves the first submit unanswered, refuses part 1's copies for good and answers part 2 with
    `second` (0: taken, id PART2, its receipt sent by `report_second`)."""

    def __init__(self, second: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.second = second
        self.part2: tuple[SmppSession, SubmittedSms] | None = None

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if self.first is None:
            await super().on_submit(session, seq, sms)
            return
        self.server.record(sms)
        if sms.udh and sms.udh[-1] == 2:
            session.send_pdu(
                "submit_sm_resp", seq, self.second, message_id="PART2" if not self.second else ""
            )
            self.part2 = (session, sms)
            return
        session.send_pdu("submit_sm_resp", seq, ESME_RINVDSTADR, message_id="")

    async def report_second(self, status: ReportStatus) -> None:
        assert self.part2 is not None
        session, sms = self.part2
        await session.send_report("PART2", sms.source, sms.destination, status, datetime.now(UTC))


def _text(raw: bytes) -> str:
    part = next(p for p in message_from_bytes(raw).walk() if p.get_content_type() == "text/plain")
    return str(part.get_payload(decode=True).decode())


async def test_part_one_delivered_after_all_with_part_two_never_sent_stays_failed(tmp_path: Path) -> None:
    port, sink_port = free_port(), free_port()
    with structlog.testing.capture_logs() as logs:
        async with (
            LongSMSC(ESME_RMSGQFUL, port=port) as smsc,
            smtp_sink(sink_port) as sink,
            running_gateway(slow_link(tmp_path, port, 3.0, relay_port=sink_port)) as gw,
        ):
            assert (await gw.send(mail(f"{MUTE}@{DOMAIN}", "Long text " * 25))).error is None
            db = gw.store.db.conn
            await gw.until(
                lambda: db.execute("SELECT state FROM messages").fetchone()[0] == "failed", timeout=10
            )
            await sink.wait(1)  # the bounce
            assert db.execute("SELECT seq, state FROM parts ORDER BY seq").fetchall() == [
                (1, "failed"),
                (2, "cancelled"),
            ]
            smsc.answer_first("FIRST1")
            await gw.until(lambda: any(e["event"] == "mt.late_accept_ended" for e in logs), timeout=10)
            await smsc.report("FIRST1", ReportStatus.DELIVERED)
            await gw.until(lambda: any(e["event"] == "dlr.delivered_after_failure" for e in logs), timeout=5)
            await gw.until(
                lambda: db.execute("SELECT state FROM parts WHERE seq = 1").fetchone()[0] == "delivered"
            )
            state, reason = db.execute("SELECT state, reason FROM messages").fetchone()
            assert state == "failed", (state, reason)
            assert reason == "reported failed, then part 1 of 2 delivered after all; part 2 not sent"
            assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1  # the bounce alone
    [said] = [e for e in logs if e["event"] == "dlr.delivered_after_failure"]
    assert said["now"] == "failed" and "never sent" in said["reason"], said
    assert "the phone has the SMS" not in said["reason"]


async def test_part_one_delivered_after_all_then_part_two_tells_the_sender_bounced(tmp_path: Path) -> None:
    port, sink_port = free_port(), free_port()
    with structlog.testing.capture_logs() as logs:
        async with (
            LongSMSC(0, port=port) as smsc,
            smtp_sink(sink_port) as sink,
            running_gateway(slow_link(tmp_path, port, 3.0, relay_port=sink_port)) as gw,
        ):
            assert (await gw.send(mail(f"{MUTE}@{DOMAIN}", "Long text " * 25))).error is None
            db = gw.store.db.conn
            await gw.until(
                lambda: db.execute("SELECT state FROM messages").fetchone()[0] == "failed", timeout=10
            )
            await sink.wait(1)  # the bounce
            smsc.answer_first("FIRST1")
            await gw.until(lambda: any(e["event"] == "mt.late_accept_ended" for e in logs), timeout=10)
            await smsc.report("FIRST1", ReportStatus.DELIVERED)
            await gw.until(lambda: db.execute("SELECT state FROM messages").fetchone()[0] == "submitted")
            (reason,) = db.execute("SELECT reason FROM messages").fetchone()
            assert (
                reason == "reported failed, then part 1 of 2 delivered after all; part 2 sent, report pending"
            )
            await smsc.report_second(ReportStatus.DELIVERED)
            await gw.until(lambda: db.execute("SELECT state FROM messages").fetchone()[0] == "delivered")
            await sink.wait(2)
            notice = _text(sink.messages[1][2])
            assert notice.startswith(AFTER_FAILURE("en")) and "was delivered" in notice, notice
            assert db.execute("SELECT reason FROM messages").fetchone() == (None,)


async def test_part_two_failing_after_part_one_arrived_after_all_is_not_bounced_again(tmp_path: Path) -> None:
    # The first bounce stays right (the phone has part 1 alone): a second "could not be delivered"
    # read as another SMS lost, and counted a second failure of the account.
    port, sink_port = free_port(), free_port()
    with structlog.testing.capture_logs() as logs:
        async with (
            LongSMSC(0, port=port) as smsc,
            smtp_sink(sink_port) as sink,
            running_gateway(slow_link(tmp_path, port, 3.0, relay_port=sink_port)) as gw,
        ):
            assert (await gw.send(mail(f"{MUTE}@{DOMAIN}", "Long text " * 25))).error is None
            db = gw.store.db.conn
            state = "SELECT state FROM messages"
            await gw.until(lambda: db.execute(state).fetchone()[0] == "failed", timeout=10)
            await sink.wait(1)  # the bounce
            smsc.answer_first("FIRST1")
            await gw.until(lambda: any(e["event"] == "mt.late_accept_ended" for e in logs), timeout=10)
            await smsc.report("FIRST1", ReportStatus.DELIVERED)
            await gw.until(lambda: db.execute(state).fetchone()[0] == "submitted")
            await smsc.report_second(ReportStatus.FAILED)
            await gw.until(lambda: db.execute(state).fetchone()[0] == "failed")
            # The notice is written in the receipt's own transaction: none now is none at all.
            assert db.execute("SELECT COUNT(*) FROM outbox").fetchone() == (1,)
            (reason,) = db.execute("SELECT reason FROM messages").fetchone()
            assert reason.startswith("part 2 of 2: ") and "part 1 delivered" in reason, reason
    assert len(sink.messages) == 1
