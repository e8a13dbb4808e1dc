"""A second final receipt that contradicts the first is a later receipt of a known part, not unmatched.

UNDELIV then DELIVRD for one SMSC id: the first one settles the part (as in Kannel) and the second
changes nothing. It was logged `dlr.unmatched`, as if it named no SMS: an operator looking for why
the phone had an SMS reported failed found nothing. It is logged `dlr.later_receipt` with its part;
still stored without one, since a newer SMS given the same id (whose submit answer it may have
overtaken) may yet take it. So is one that comes 11 minutes after the first: looked for within the
early receipts' bound (10 minutes), it was `dlr.unmatched` again; a receipt may come a day late.
A real gateway on 127.0.0.1, the SMPP simulator's session over TCP, the real SQLite file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from smsc.base import ReportStatus
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway
from tests.fakes.smsc import FakeSMSC


class QuietSMSC(FakeSMSC):
    """Takes every submit and sends receipts only when told (`report`)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.taken: list[tuple[SmppSession, SubmittedSms, str]] = []

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)
        verdict = self.core.on_submit(sms)
        session.answer_submit(seq, verdict, report=False)
        self.taken.append((session, sms, self.server.format_id(verdict.message_id)))

    async def report(self, status: ReportStatus) -> None:
        session, sms, message_id = self.taken[0]
        await session.send_report(message_id, sms.source, sms.destination, status, datetime.now(UTC))


@pytest.mark.parametrize("ago", [0, 11 * 60])  # 11 minutes: past the early receipts' 10
@pytest.mark.parametrize("first, then", [("failed", "delivered"), ("delivered", "failed")])
async def test_a_contradicting_receipt_is_said_to_be_of_its_part(
    tmp_path: Path, first: str, then: str, ago: int
) -> None:
    port = free_port()
    with structlog.testing.capture_logs() as logs:
        async with QuietSMSC(port=port) as smsc, running_gateway(make_config(tmp_path, smsc_port=port)) as gw:
            assert (await gw.send(mail(f"601123456@{DOMAIN}", "Which is it"))).error is None
            db = gw.store.db.conn
            await gw.until(lambda: gw.states() == ["submitted"])
            await smsc.report(ReportStatus(first))
            await gw.until(lambda: gw.states() == [first])
            back = "UPDATE parts SET done_at = done_at - ?"  # the first receipt came `ago` seconds back
            await gw.store.write(lambda: db.execute(back, (ago,)))
            await smsc.report(ReportStatus(then))
            await gw.until(lambda: db.execute("SELECT COUNT(*) FROM dlrs").fetchone()[0] == 2)
            rows = db.execute("SELECT part_id, status FROM dlrs ORDER BY id").fetchall()
            assert rows == [(1, first), (None, then)]
            assert gw.states() == [first]  # the first one stands
    events = [e["event"] for e in logs]
    assert "dlr.unmatched" not in events
    [later] = [e for e in logs if e["event"] == "dlr.later_receipt"]
    assert (later["part"], later["status"]) == (1, then)
