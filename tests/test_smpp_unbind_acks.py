"""MO acknowledgements around an SMPP link's stop, against fake SMSCs over real TCP on loopback.

An acknowledgement counts as read by the SMSC once it answered a request written after it; at a stop
that request is the unbind. An acknowledgement the link wrote before its unbind is confirmed by the
unbind_resp; one written after it cannot be, and no enquire_link may follow the unbind to ask.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from smsc.base import Ack, InboundSms
from smsc.smpp.connection import SmppConnection
from tests.fakes.smsc import DeafSMSC, EventRecorder
from tests.test_smpp_link import ME, PHONE, running_link

ENQUIRE_LINK, UNBIND = 0x00000015, 0x00000006


@dataclass
class Committing(EventRecorder):
    """A recorder whose commit of the MOs named in `held` lasts until the test releases it."""

    held: dict[str, asyncio.Event] = field(default_factory=dict)
    entered: list[str] = field(default_factory=list)

    async def on_deliver(self, link: str, sms: InboundSms) -> Ack:
        self.entered.append(sms.text)
        self._changed.set()
        if (gate := self.held.get(sms.text)) is not None:
            await gate.wait()
        return await super().on_deliver(link, sms)


class DeafAndSlowToUnbindSMSC(DeafSMSC):
    """Ignores enquire_link and unbind alike: the link's unbind waits out its own timer."""

    ignored_commands = frozenset({ENQUIRE_LINK, UNBIND})


async def test_an_mo_read_while_a_stop_waits_for_handlers_is_acknowledged_before_the_unbind() -> None:
    # One MO is being committed when the stop begins; another arrives while the stop waits for it. Both
    # acknowledgements go out before the unbind, and the unbind_resp (the SMSC ignores enquire_link)
    # confirms them both.
    ev = Committing(held={"first": asyncio.Event(), "second": asyncio.Event()})
    async with (
        DeafSMSC() as smsc,
        running_link(smsc.port, events=ev, enquire_link_seconds=300, response_timeout_seconds=3) as (link, _),
    ):
        await smsc.inject_mo(PHONE, ME, "first")
        await ev.wait_until(lambda: ev.entered == ["first"])
        stopping = asyncio.create_task(link.stop())
        await asyncio.sleep(0.05)  # the stop is waiting for the handler
        await smsc.inject_mo(PHONE, ME, "second")
        await ev.wait_until(lambda: ev.entered == ["first", "second"])
        ev.held["first"].set()
        await smsc.wait_until(lambda: len(smsc.stats.deliver_responses) == 1)
        await asyncio.sleep(0.2)
        assert smsc.stats.commands["unbind"] == 0  # still waiting for the second handler
        ev.held["second"].set()
        await asyncio.wait_for(stopping, 10)
    assert smsc.stats.deliver_responses == [("mo", 0), ("mo", 0)]
    assert smsc.stats.commands["unbind"] == 1
    assert sorted(ev.acked) == [("first", True), ("second", True)]


async def test_an_ack_written_after_the_unbind_leaves_no_prod_pending_and_is_unconfirmed() -> None:
    # The handler outlasts the stop's wait, so the unbind goes first and the acknowledgement follows
    # it. No enquire_link may follow an unbind, so none is written, and none is taken to be on its
    # way; the acknowledgement, never confirmed, is reported unconfirmed when the connection ends.
    ev = Committing(held={"late": asyncio.Event()})
    async with (
        DeafAndSlowToUnbindSMSC() as smsc,
        running_link(smsc.port, events=ev, enquire_link_seconds=300, response_timeout_seconds=1) as (link, _),
    ):
        conn = link._conn
        assert isinstance(conn, SmppConnection)
        await smsc.inject_mo(PHONE, ME, "late")
        await ev.wait_until(lambda: ev.entered == ["late"])
        stopping = asyncio.create_task(link.stop())
        await smsc.wait_until(lambda: smsc.stats.commands["ignored"] == 1)  # the unbind
        ev.held["late"].set()
        await smsc.wait_until(lambda: smsc.stats.deliver_responses == [("mo", 0)])
        await asyncio.sleep(0.05)  # a prod would be asked for in the next loop steps
        assert conn.acks.waiting and not conn.acks.prod_in_flight
        assert smsc.stats.commands["ignored"] == 1  # no enquire_link after the unbind
        await asyncio.wait_for(stopping, 10)
    assert ev.acked == [("late", False)]
