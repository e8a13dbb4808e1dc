"""SmppLink when the SMSC does not answer as asked, over real TCP on loopback: throttling pauses the
link, a silent SMSC gives unanswered after the response timeout, a window of unanswered submits means
reconnect, and a late submit answer inside or after the grace. Split from test_smpp_link.py by
subject (it was over 400 lines)."""

from __future__ import annotations

import asyncio

import structlog

from smsc.base import (
    LinkState,
    Outcome,
)
from smsc.pacing import LinkPacer
from tests.fakes.smsc import (
    LateAnswerSMSC,
    SilentSMSC,
    ThrottlingSMSC,
)
from tests.test_smpp_link import paced, running_link, sms

# --- throttling, black holes, lost connections --------------------------------------------------


async def test_throttling_answers_pause_the_link_then_it_succeeds() -> None:
    # ESME_RTHROTTLED is THROTTLED (not a failure); the link's pacer backs off instead of hammering.
    async with ThrottlingSMSC(accept_per_second=2) as smsc, running_link(smsc.port) as (link, _):
        pacer = LinkPacer(link.stats().window, 1000, 0.05)
        outcomes = [(await paced(pacer, link, sms(f"m{i}"))).outcome for i in range(2)]
        assert outcomes == [Outcome.ACCEPTED, Outcome.ACCEPTED]
        seen = []
        while (result := await paced(pacer, link, sms("later"))).outcome is not Outcome.ACCEPTED:
            seen.append(result.outcome)
        assert seen and set(seen) == {Outcome.THROTTLED}
        assert link.stats().throttled == len(seen) == smsc.throttled
        # Without the doubling pause a tight retry loop would be refused hundreds of times.
        assert smsc.throttled <= 8


async def test_silent_smsc_gives_unanswered_after_the_response_timeout() -> None:
    # A submit that is never answered resolves UNANSWERED with the grace to wait; the link stays
    # up. When the connection goes its late answer still waits, for the receipt that may name it
    # (`smsc.smpp.lostreceipts`), and is given up as None when the link stops.
    async with SilentSMSC() as smsc, running_link(smsc.port, response_timeout_seconds=0.3) as (link, ev):
        result = await link.submit(sms())
        assert result.outcome is Outcome.UNANSWERED and "submit_sm_resp" in (result.error or "")
        assert result.retry_after == 300 and result.late is not None and not result.late.done()
        assert len(smsc.received) == 1 and link.state is LinkState.ACTIVE
        smsc.drop_all()
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        assert not result.late.done()
        await link.stop()
        assert await asyncio.wait_for(result.late, 5) is None


async def test_a_window_of_unanswered_submits_means_reconnect() -> None:
    # The SMSC answers keep-alives but no submit: after a whole window of response timeouts the
    # session is dropped and made anew (its late answers left to a receipt, given up at the stop), not
    # kept for good while each place given back puts one more submit on top of those the SMSC holds.
    async with (
        SilentSMSC() as smsc,
        running_link(smsc.port, response_timeout_seconds=0.2, window=3, enquire_link_seconds=0.05) as (
            link,
            ev,
        ),
    ):
        first = await asyncio.gather(*(link.submit(sms()) for _ in range(2)))
        assert [r.outcome for r in first] == [Outcome.UNANSWERED] * 2
        assert link.state is LinkState.ACTIVE  # two of three: the session is kept for late answers
        third = await link.submit(sms())
        assert third.outcome is Outcome.UNANSWERED
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        assert LinkState.RECONNECTING in ev.states
        assert not any(r.late.done() for r in (*first, third) if r.late)
        await link.stop()
        assert [await asyncio.wait_for(r.late, 5) for r in (*first, third) if r.late] == [None] * 3


async def test_without_a_grace_an_unanswered_submit_is_temporary() -> None:
    # late_answer_grace_seconds = 0: the old contract, re-sent after the usual back-off.
    async with (
        SilentSMSC() as smsc,
        running_link(smsc.port, response_timeout_seconds=0.2, late_answer_grace_seconds=0) as (link, _),
    ):
        result = await link.submit(sms())
        assert result.outcome is Outcome.TEMPORARY and result.late is None


async def test_late_submit_resp_resolves_the_late_answer_with_its_message_id() -> None:
    # An answer after the response timeout is not dropped: it carries the id the receipt will name.
    async with (
        LateAnswerSMSC(answer_after=0.5) as smsc,
        running_link(smsc.port, response_timeout_seconds=0.1, late_answer_grace_seconds=10) as (link, ev),
    ):
        result = await link.submit(sms())
        assert result.outcome is Outcome.UNANSWERED and result.late is not None
        late = await asyncio.wait_for(result.late, 5)
        assert late is not None and late.outcome is Outcome.ACCEPTED and late.message_id == "1"
        await ev.wait_until(lambda: len(ev.reports) == 1)
        assert ev.reports[0].message_id == "1"


async def test_late_answer_after_the_grace_is_only_logged() -> None:
    # Past twice the grace the part may already be on its way again: the answer settles nothing.
    async with (
        LateAnswerSMSC(answer_after=0.6) as smsc,
        running_link(smsc.port, response_timeout_seconds=0.1, late_answer_grace_seconds=0.1) as (link, ev),
    ):
        with structlog.testing.capture_logs() as logs:
            result = await link.submit(sms())
            assert result.late is not None and await asyncio.wait_for(result.late, 5) is None
            await ev.wait_until(lambda: len(ev.reports) == 1)  # sent after the answer: the marker
        assert [e["seq"] for e in logs if e["event"] == "smpp.unexpected_submit_resp"] == [2]
        assert link.state is LinkState.ACTIVE
