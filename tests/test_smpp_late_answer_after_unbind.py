"""An answer to a submit past its response timeout, read after the SMSC's unbind, still settles it.

After the SMSC's unbind the link reads on until nothing it waits for is left (or `UNBIND_WAIT`): the
answers to submits inside their timer, and ours to its deliveries. A submit past its timer whose late
answer is still taken (`Submits.late`) was not among them: the unbind was answered and the connection
closed at once, the acceptance that followed it was thrown away, and the part went to the phone again
after the reconnect. A real SmppLink against a scripted SMPP SMSC over TCP on loopback.
"""

from __future__ import annotations

import asyncio

from smsc.base import Outcome
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.fakes.smsc import FakeSMSC
from tests.test_smpp_link import running_link, sms


class SilentSMSC(FakeSMSC):
    """Takes every submit and answers none of them until the test does."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[SmppSession, int]] = []

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.server.record(sms)
        self.held.append((session, seq))


async def test_a_late_answer_after_the_smscs_unbind_is_read() -> None:
    timers = {"response_timeout_seconds": 0.5, "late_answer_grace_seconds": 5}
    async with SilentSMSC() as smsc, running_link(smsc.port, **timers) as (link, _ev):
        result = await link.submit(sms())
        assert result.outcome is Outcome.UNANSWERED and result.late is not None
        [(session, seq)] = smsc.held
        session.send_pdu("unbind")  # the SMSC ends the session...
        await asyncio.sleep(0.1)  # ...and answers the submit in a later write, inside UNBIND_WAIT
        session.send_pdu("submit_sm_resp", seq, 0, message_id="late1")
        late = await asyncio.wait_for(result.late, 10)
        assert late is not None, "the answer after the unbind was thrown away"
        assert (late.outcome, late.message_id) == (Outcome.ACCEPTED, "late1")
