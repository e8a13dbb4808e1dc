"""The deliver_sm one simulated SMPP session has sent and its client has not yet acknowledged. As an
SMSC does, each MO part or delivery receipt goes out again when the client does not answer within
`resend_timeout` or answers with an error (after `retry_delay`, doubling: `core.retry_pause`), until
`max_attempts`; what is still
unacknowledged when the session ends goes back to the core, so that the next bind gets it as it was.
Kept apart from `smpp_server.SmppSession` because the timers and the hand-back are the SMSC's
persistence, while the session reads and answers the client's PDUs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from smsc.simulator.core import keep_recent, retry_pause

if TYPE_CHECKING:
    from smsc.simulator.smpp_server import SmppSession

log = structlog.get_logger(__name__)


@dataclass
class _Outbound:
    kind: str  # "mo" | "report"
    fields: dict[str, Any]
    key: tuple[Any, ...]  # what to hand back to the core if the session dies before the answer
    attempts: int = 0
    timer: asyncio.TimerHandle | None = None


class Deliveries:
    """One session's deliver_sm awaiting the client's answer, by sequence number; see the module
    docstring. PDUs go out through the session, so that what a fake SMSC does to its writes applies."""

    def __init__(self, session: SmppSession) -> None:
        self.session = session
        self._outbound: dict[int, _Outbound] = {}

    def __len__(self) -> int:
        return len(self._outbound)

    def send(self, kind: str, fields: dict[str, Any], key: tuple[Any, ...]) -> None:
        """Deliver `fields` as a deliver_sm; `key` goes to `SessionBase.hold` if it is never acknowledged."""
        self._deliver(_Outbound(kind, fields, key))

    def take(self) -> list[tuple[Any, ...]]:
        """Stop every delivery in progress and return the keys of those not acknowledged."""
        for ob in self._outbound.values():
            if ob.timer:
                ob.timer.cancel()
        keys = [ob.key for ob in self._outbound.values()]
        self._outbound.clear()
        return keys

    def _deliver(self, ob: _Outbound) -> None:
        session = self.session
        if session.closed.is_set():
            session.hold(ob.key)
            return
        ob.attempts += 1
        seq = session.send_pdu("deliver_sm", **ob.fields)
        self._outbound[seq] = ob
        ob.timer = asyncio.get_running_loop().call_later(
            session.server.resend_timeout, self._retry, seq, None
        )

    def answered(self, seq: int, status: int) -> None:
        """The client's deliver_sm_resp (or generic_nack, as an error) to deliver_sm `seq`."""
        server = self.session.server
        ob = self._outbound.pop(seq, None)
        if ob is None:
            return
        if ob.timer:
            ob.timer.cancel()
        keep_recent(server.stats.deliver_responses, (ob.kind, status))
        server.stats.deliver_answered += 1
        if status:
            self._outbound[seq] = ob
            pause = retry_pause(server.retry_delay, ob.attempts)
            ob.timer = asyncio.get_running_loop().call_later(pause, self._retry, seq, status)
        else:
            self.session.taken(ob.key)
        server.changed()

    def _retry(self, seq: int, status: int | None) -> None:
        server = self.session.server
        ob = self._outbound.pop(seq, None)
        if ob is None:
            return
        if ob.attempts >= server.max_attempts:
            log.warning("sim.smpp.deliver_dropped", kind=ob.kind, attempts=ob.attempts, status=status)
            self.session.taken(ob.key)
            server.changed()
            return
        log.info("sim.smpp.deliver_retry", kind=ob.kind, attempt=ob.attempts + 1, status=status)
        self._deliver(ob)
