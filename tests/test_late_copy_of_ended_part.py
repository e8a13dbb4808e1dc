"""A late acceptance of a part its re-send ended meanwhile: that copy's receipt decides.

The first submit goes unanswered; the re-send ends the part (refused for good, or taken and reported
undelivered) and its sender is bounced. Then the SMSC answers the first submit after all, and reports
it DELIVRD: the phone has the SMS. The late id was logged and dropped ("the SMSC answered after the
part had been sent again"), its receipt `dlr.unmatched`, the part left failed and the sender never
told otherwise. Now the id is kept with the part, its DELIVRD makes part and message delivered, and
the sender bounced is told it reached the phone after all; an UNDELIV for it leaves the part failed.

A real gateway on 127.0.0.1, a scripted SMPP SMSC on TCP, the real SQLite file and an SMTP sink.
"""

from __future__ import annotations

from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.bouncewords import AFTER_FAILURE
from smsc.base import ReportStatus
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import DOMAIN, free_port, mail, running_gateway, smtp_sink
from tests.test_unanswered_copies import MUTE, FirstUnansweredSMSC, part_row, slow_link

ESME_RINVDSTADR = 0x0B  # a refusal for good


class RefusedCopySMSC(FirstUnansweredSMSC):
    """Leaves the first submit unanswered and refuses every later copy for good."""

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if self.first is None:
            await super().on_submit(session, seq, sms)
            return
        self.server.record(sms)
        session.send_pdu("submit_sm_resp", seq, ESME_RINVDSTADR, message_id="")


def _text(raw: bytes) -> str:
    msg = message_from_bytes(raw)
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    return str(part.get_payload(decode=True).decode())


@pytest.mark.parametrize("ending", ["refused", "undelivered"])
@pytest.mark.parametrize("late_report", ["delivered", "failed"])
async def test_the_late_copy_of_an_ended_part_decides_it(
    tmp_path: Path, ending: str, late_report: str
) -> None:
    port, sink_port = free_port(), free_port()
    kind: Any = RefusedCopySMSC if ending == "refused" else FirstUnansweredSMSC
    with structlog.testing.capture_logs() as logs:
        async with (
            kind(port=port) as smsc,
            smtp_sink(sink_port) as sink,
            running_gateway(slow_link(tmp_path, port, 1.0, relay_port=sink_port)) as gw,
        ):
            assert (await gw.send(mail(f"{MUTE}@{DOMAIN}", "Late after the end"))).error is None
            db = gw.store.db.conn
            if ending == "undelivered":
                await gw.until(lambda: part_row(gw)[0] == "submitted", timeout=10)
                [copy] = smsc.answered
                await smsc.report(copy, ReportStatus.FAILED)
            await gw.until(lambda: part_row(gw)[0] == "failed", timeout=10)
            await sink.wait(1)  # the bounce
            smsc.answer_first("FIRST1")  # the first copy's answer, late (taken up to 2.2 s)
            await gw.until(lambda: any(e["event"] == "mt.late_answer" for e in logs), timeout=10)
            await gw.until(lambda: part_row(gw)[1] == "first1", timeout=5)
            dlrs = db.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0]
            await smsc.report("FIRST1", ReportStatus(late_report))
            await gw.until(lambda: db.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] == dlrs + 1)
            matched = db.execute("SELECT part_id FROM dlrs WHERE smsc_id = 'first1'").fetchall()
            assert matched == [(1,)]
            state, _smsc_id, error = part_row(gw)
            if late_report == "delivered":
                assert state == "delivered" and error is None
                assert db.execute("SELECT state FROM messages").fetchone() == ("delivered",)
                await sink.wait(2)
                notice = _text(sink.messages[1][2])
                assert notice.startswith(AFTER_FAILURE("en")) and "was delivered" in notice, notice
            else:
                assert state == "failed" and error is not None and "failed too" in error, error
                assert db.execute("SELECT state FROM messages").fetchone() == ("failed",)
                assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1
    events = [e["event"] for e in logs]
    assert "dlr.unmatched" not in events
    assert [e["smsc_id"] for e in logs if e["event"] == "mt.late_accept_ended"] == ["first1"]
    assert not [e for e in logs if e["event"] == "mt.possible_duplicate" and e.get("smsc_id") == "first1"]


async def test_a_repeat_of_the_resends_receipt_after_the_late_id_is_its_parts(tmp_path: Path) -> None:
    """The re-send's UNDELIV ended the part, which then took the late copy's id: the SMSC's repeat of
    that UNDELIV (our answer to it lost) matched no part by id and was `dlr.unmatched`."""
    port = free_port()
    with structlog.testing.capture_logs() as logs:
        async with (
            FirstUnansweredSMSC(port=port) as smsc,
            running_gateway(slow_link(tmp_path, port, 3.0)) as gw,
        ):
            assert (await gw.send(mail(f"{MUTE}@{DOMAIN}", "Late after the end"))).error is None
            db = gw.store.db.conn
            await gw.until(lambda: part_row(gw)[0] == "submitted", timeout=10)
            [copy] = smsc.answered
            await smsc.report(copy, ReportStatus.FAILED)
            await gw.until(lambda: part_row(gw)[0] == "failed", timeout=10)
            smsc.answer_first("FIRST1")
            await gw.until(lambda: part_row(gw)[1] == "first1", timeout=10)
            await smsc.report(copy, ReportStatus.FAILED)  # the SMSC's repeat
            await gw.until(lambda: db.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] == 2)
            assert db.execute("SELECT part_id FROM dlrs ORDER BY id").fetchall() == [(1,), (1,)]
            assert part_row(gw)[0] == "failed"
    assert "dlr.unmatched" not in [e["event"] for e in logs]
    assert [e["part"] for e in logs if e["event"] == "dlr.repeated"] == [1]
