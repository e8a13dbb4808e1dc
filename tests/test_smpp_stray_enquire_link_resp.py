"""An SMSC that answers our enquire_link with a sequence number of its own (0).

The link took only an enquire_link_resp with the keep-alive's own number, and dropped any other
without a word: an SMSC answering every keep-alive with sequence 0 had its live session dropped each
idle period as "no enquire_link_resp", and nothing in the log said it had answered. Such an answer is
logged now (`smpp.unexpected_response`) and, while a keep-alive waits, taken as its answer.

Real peer: an SMPP fake on the simulator's server over TCP, its enquire_link answers rewritten.
"""

from __future__ import annotations

import struct

import structlog

from smsc.base import LinkState, Outcome
from smsc.smpp.codec import ENQUIRE_LINK, ENQUIRE_LINK_RESP, encode
from smsc.smpp.enquiries import Enquiries
from tests.fakes.smsc import FakeSMSC, _FakeSession
from tests.test_smpp_link import running_link, sms


class _SeqZeroSession(_FakeSession):
    """Answers every enquire_link with sequence number 0."""

    async def dispatch(self, raw: bytes) -> None:
        (command_id,) = struct.unpack_from(">I", raw, 4)
        if command_id != ENQUIRE_LINK:
            await super().dispatch(raw)
            return
        self.server.stats.commands["enquire_link"] += 1
        self.server.changed()
        self.write(encode(ENQUIRE_LINK_RESP, 0))


class SeqZeroSMSC(FakeSMSC):
    def __init__(self) -> None:
        super().__init__()
        self.server.session_class = _SeqZeroSession


async def test_a_keepalive_answered_with_sequence_zero_keeps_the_session_and_is_logged() -> None:
    timers = {"enquire_link_seconds": 0.05, "response_timeout_seconds": 0.3}
    with structlog.testing.capture_logs() as logs:
        async with SeqZeroSMSC() as smsc, running_link(smsc.port, **timers) as (link, ev):
            # Several idle periods, each a keep-alive answered with 0: each dropped the session.
            await smsc.wait_until(lambda: smsc.stats.commands["enquire_link"] >= 12, timeout=20)
            assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
            assert len(smsc.stats.binds) == 1 and ev.states.count(LinkState.ACTIVE) == 1, ev.states
    assert not [e for e in logs if e["event"] == "smpp.link_down"]
    stray = [e for e in logs if e["event"] == "smpp.unexpected_response"]
    assert stray and stray[0]["command"] == "enquire_link_resp" and stray[0]["seq"] == 0, stray


def test_only_our_unanswered_enquire_links_are_ours_and_a_silent_peer_keeps_them_bounded() -> None:
    enquiries = Enquiries()
    enquiries.sent(7)
    assert enquiries.answered(7) and not enquiries.answered(7) and not enquiries.answered(0)
    for seq in range(100, 1100):  # probes an SMSC never answers by number
        enquiries.sent(seq)
    assert not enquiries.answered(100) and enquiries.answered(1099)
    assert len(enquiries._seqs) < 100
