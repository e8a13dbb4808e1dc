"""SmppLink's session, over real TCP on loopback: lost connections and resets, an unbind from the SMSC,
unknown commands, garbage and overstated lengths, generic_nack, enquire_link both ways, deliver_sm
answered after its handler, a wrong password, stop, and submits before the link is up. Split from
test_smpp_link.py by subject (it was over 400 lines)."""

from __future__ import annotations

import asyncio
import struct

from smsc.base import (
    Ack,
    InboundSms,
    LinkState,
    Outcome,
)
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.fakes.smsc import (
    DeafSMSC,
    DisconnectingSMSC,
    EventRecorder,
    FakeSMSC,
    HappySMSC,
)
from tests.test_smpp_link import ME, PHONE, running_link, sms


async def test_dropped_connection_fails_in_flight_and_reconnects() -> None:
    # Everything in flight when the SMSC vanishes is TEMPORARY; the link rebinds and sends again.
    async with DisconnectingSMSC(after=2) as smsc, running_link(smsc.port) as (link, ev):
        assert [(await link.submit(sms())).outcome for _ in range(2)] == [Outcome.ACCEPTED] * 2
        in_flight = await asyncio.gather(*(link.submit(sms()) for _ in range(3)))
        assert [r.outcome for r in in_flight] == [Outcome.TEMPORARY] * 3
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        assert ev.states == [LinkState.CONNECTING, LinkState.ACTIVE, LinkState.RECONNECTING, LinkState.ACTIVE]
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert link.stats().reconnects == 1


def test_a_submit_written_after_the_peer_reset_is_temporary_under_uvloop() -> None:
    # The daemon runs on uvloop, whose closed transport raises on write: a submit written between the
    # peer's reset and the read loop seeing it reached the dispatcher as an internal error, and the
    # part was put on hold until an admin retried it. It is a lost connection: TEMPORARY, then rebind.
    import uvloop

    async def scenario() -> None:
        async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
            assert link._conn is not None
            link._conn.writer.transport.abort()  # the reset
            await asyncio.sleep(0)  # the transport is closed; the read loop has not seen it yet
            assert (await link.submit(sms())).outcome is Outcome.TEMPORARY
            await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
            assert (await link.submit(sms())).outcome is Outcome.ACCEPTED

    uvloop.run(scenario())


async def test_smsc_initiated_unbind_is_answered_and_the_link_rebinds() -> None:
    # smpplib leaves an SMSC's unbind unanswered; we answer unbind_resp, close and bind again.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
        await smsc.unbind_all()
        await smsc.wait_until(lambda: smsc.stats.unbind_answered == 1)
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert len(smsc.stats.binds) == 2


async def test_unknown_command_is_nacked_and_the_link_stays() -> None:
    # A request we do not know gets generic_nack ESME_RINVCMDID with its sequence; nothing else changes.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, _):
        smsc.send_raw(struct.pack(">IIII", 16, 0x00000999, 0, 77))
        smsc.send_raw(struct.pack(">IIII", 16, 0x00000008, 0, 78))  # cancel_sm: known to SMPP, not to us
        await smsc.wait_until(lambda: len(smsc.stats.nacks) == 2)
        assert smsc.stats.nacks == [(77, 0x03), (78, 0x03)]
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert len(smsc.stats.binds) == 1


async def test_garbage_bytes_do_not_kill_the_link() -> None:
    # An unframeable stream is nacked and dropped; the link reconnects and keeps working.
    async with HappySMSC() as smsc, running_link(smsc.port) as (link, ev):
        smsc.send_raw(b"GET / HTTP/1.1\r\nHost: smsc\r\n\r\n")
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        assert smsc.stats.nacks[0][1] == 0x02
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        assert link.stats().extra["bad_pdus"] == "1"


async def test_an_overstated_command_length_ends_the_session_while_the_smsc_keeps_talking() -> None:
    # A PDU claiming 60,000 bytes swallows every later PDU, the SMSC's chatter keeping bytes coming so
    # no keep-alive is due: the session is ended once the PDU stays incomplete for the response timeout.
    async with HappySMSC() as smsc, running_link(smsc.port, response_timeout_seconds=0.3) as (link, ev):
        smsc.send_raw(struct.pack(">IIII", 60_000, 0x00000015, 0, 90))  # enquire_link, "60,000 bytes"

        async def chatter() -> None:
            for seq in range(91, 400):
                smsc.send_raw(struct.pack(">IIII", 16, 0x00000015, 0, seq))
                await asyncio.sleep(0.02)

        talking = asyncio.create_task(chatter())
        try:
            await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2, timeout=3)
        finally:
            talking.cancel()
        assert link.stats().extra["bad_pdus"] == "1"
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED


async def test_generic_nack_fails_the_matching_submit() -> None:
    # A generic_nack with a pending submit's sequence resolves that submit with the nack's status.
    class NackingSMSC(FakeSMSC):
        async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
            session.nack(seq, 0x03)

    async with NackingSMSC() as smsc, running_link(smsc.port) as (link, _):
        result = await link.submit(sms())
        assert result.outcome is Outcome.MALFORMED and "ESME_RINVCMDID" in (result.error or "")


async def test_idle_link_sends_enquire_link_and_answers_the_peers() -> None:
    # After enquire_link_seconds of silence the link pings; the SMSC's own ping is answered.
    async with HappySMSC() as smsc, running_link(smsc.port, enquire_link_seconds=0.1) as (link, _):
        await smsc.wait_until(lambda: smsc.stats.commands["enquire_link"] >= 2)
        smsc.sessions[0].send_pdu("enquire_link")
        await smsc.wait_until(lambda: smsc.stats.commands["enquire_link_resp"] == 1)
        assert link.state is LinkState.ACTIVE and len(smsc.stats.binds) == 1


async def test_unanswered_enquire_link_means_reconnect() -> None:
    # A peer that stops answering keep-alives is treated as gone: the link binds afresh.
    timers = {"enquire_link_seconds": 0.1, "response_timeout_seconds": 0.2}
    async with DeafSMSC() as smsc, running_link(smsc.port, **timers) as (_, ev):
        await ev.wait_until(lambda: ev.states.count(LinkState.ACTIVE) == 2)
        assert smsc.stats.commands["ignored"] >= 1 and len(smsc.stats.binds) >= 2


async def test_deliver_sm_is_answered_only_after_the_handler_and_io_goes_on() -> None:
    # While the gateway is still committing an MO, no deliver_sm_resp goes out, yet submits flow.
    release = asyncio.Event()

    class SlowEvents(EventRecorder):
        async def on_deliver(self, link: str, sms: InboundSms) -> Ack:
            await release.wait()
            return await super().on_deliver(link, sms)

    async with HappySMSC() as smsc, running_link(smsc.port, events=SlowEvents()) as (link, ev):
        await smsc.inject_mo(PHONE, ME, "hold on")
        assert (await link.submit(sms())).outcome is Outcome.ACCEPTED
        await ev.wait_until(lambda: bool(ev.reports))  # the receipt's handler is not held up either
        assert ("mo", 0) not in smsc.stats.deliver_responses
        release.set()
        await smsc.wait_until(lambda: ("mo", 0) in smsc.stats.deliver_responses)
        assert [m.text for m in ev.delivered] == ["hold on"]


async def test_wrong_password_never_goes_active_and_keeps_retrying() -> None:
    # ESME_RINVPASWD is a configuration error: logged, retried at the slow pace, never ACTIVE.
    async with HappySMSC() as smsc, running_link(smsc.port, password="wrong", active=False) as (link, ev):
        await smsc.wait_until(lambda: len(smsc.stats.binds) >= 2)
        assert {b[2] for b in smsc.stats.binds} == {0x0E}
        assert LinkState.ACTIVE not in ev.states and link.state is not LinkState.ACTIVE
        assert (await link.submit(sms())).outcome is Outcome.TEMPORARY


async def test_stop_unbinds_and_later_submits_are_temporary() -> None:
    # stop() waits for in-flight answers, unbinds cleanly and leaves the link STOPPED.
    async with HappySMSC(response_delay=0.1) as smsc, running_link(smsc.port) as (link, ev):
        pending = asyncio.create_task(link.submit(sms()))
        await smsc.wait_for(1)
        await link.stop()
        assert (await pending).outcome is Outcome.ACCEPTED
        assert smsc.stats.commands["unbind"] == 1
        assert link.state is LinkState.STOPPED and ev.states[-1] is LinkState.STOPPED
        assert (await link.submit(sms())).outcome is Outcome.TEMPORARY


async def test_submit_before_the_link_is_up_is_temporary() -> None:
    # Nothing listening: submit answers TEMPORARY at once instead of hanging.
    async with HappySMSC() as smsc:
        port = smsc.port
    async with running_link(port, active=False) as (link, ev):
        assert (await link.submit(sms())).outcome is Outcome.TEMPORARY
        await ev.wait_until(lambda: LinkState.RECONNECTING in ev.states)
