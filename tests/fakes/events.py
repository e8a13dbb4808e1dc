"""`EventRecorder`, the `LinkEvents` link tests hand to SMPP and CIMD2 links alike: it keeps what a link
hands up (MOs, reports, state changes), answers as the test says, and lets the test wait for a
condition without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from smsc.base import Ack, DeliveryReport, InboundSms, LinkState
from smsc.simulator.serving import wait_until


@dataclass
class EventRecorder:
    """A LinkEvents that records what a link hands up; `ack` decides the answer (a callable gets
    the MO or report and returns the Ack)."""

    ack: Ack | Callable[[InboundSms | DeliveryReport], Ack] = Ack.OK
    delivered: list[InboundSms] = field(default_factory=list)
    reports: list[DeliveryReport] = field(default_factory=list)
    states: list[LinkState] = field(default_factory=list)
    # What the link said of each MO acknowledgement: (text, confirmed), in the order it said it.
    acked: list[tuple[str, bool]] = field(default_factory=list)
    calls: int = 0  # every on_deliver/on_report call, including those answered RETRY
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _answer(self, item: InboundSms | DeliveryReport) -> Ack:
        self.calls += 1
        self._changed.set()
        return self.ack(item) if callable(self.ack) else self.ack

    async def on_deliver(self, link: str, sms: InboundSms) -> Ack:
        ack = self._answer(sms)
        if ack is Ack.OK:
            self.delivered.append(sms)
        return ack

    async def on_report(self, link: str, report: DeliveryReport) -> Ack:
        ack = self._answer(report)
        if ack is Ack.OK:
            self.reports.append(report)
        return ack

    def on_state(self, link: str, state: LinkState) -> None:
        self.states.append(state)
        self._changed.set()

    def on_acked(self, link: str, sms: InboundSms, confirmed: bool) -> None:
        self.acked.append((sms.text, confirmed))
        self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds, re-checked on every event; `timeout` is a hang guard."""
        await wait_until(self._changed, predicate, timeout)

    async def wait_for(self, condition: Callable[[], bool], within: float = 10.0) -> None:
        """Wait until `condition()` holds, re-checked on every event and every 50 ms besides, since
        conditions on link stats change without an event; `within` is only a hang guard."""
        await wait_until(self._changed, condition, within, poll=0.05)
