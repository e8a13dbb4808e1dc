"""The limits every SMTP session lives within and the count of sessions open, one per daemon, shared
by both listeners.

They are kept apart from the session (`gateway.smtp.guard`) because they outlive every session: the
connection caps and the strangers' body budget are counts across sessions, and a stopping daemon
reaches every live session through them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.bitelog import BiteLog
from gateway.smtp import replies, stopping
from gateway.smtp.eviction import (
    EVICT_SILENT_SECONDS,
    EVICT_UNPROVEN_SECONDS,
    STRANGER_DATA_GRACE_SECONDS,
    STRANGER_DATA_MIN_RATE,
    who_gives_way,
)
from gateway.smtp.sessionlimits import DATA_SECONDS_MAX, STRANGER_DATA_BUDGET

if TYPE_CHECKING:
    from gateway.smtp.guard import GuardedSMTP


@dataclass(slots=True)
class SessionGuard:
    """The limits and the shared connection count; one per daemon, shared by both listeners."""

    max_connections: int = 500
    max_per_address: int = 50
    max_commands: int = 250
    evict_after: float = EVICT_SILENT_SECONDS
    evict_unproven_after: float = EVICT_UNPROVEN_SECONDS
    max_data_seconds: float = DATA_SECONDS_MAX
    stranger_data_budget: int = STRANGER_DATA_BUDGET
    stranger_rate_grace: float = STRANGER_DATA_GRACE_SECONDS
    stranger_min_rate: float = STRANGER_DATA_MIN_RATE
    stranger_data: int = field(default=0, init=False)  # body bytes strangers' sessions hold now
    bite: BiteLog = field(default_factory=BiteLog)
    _open: int = field(default=0, init=False)
    # The sessions now connected, so that a stopping daemon can tell them it is going (RFC 5321 3.8).
    live: set[GuardedSMTP] = field(default_factory=set, init=False)
    _per_address: Counter[str] = field(default_factory=Counter, init=False)

    @classmethod
    def from_config(cls, smtp: Any) -> SessionGuard:
        return cls(
            max_connections=smtp.max_connections,
            max_per_address=smtp.max_connections_per_address,
            max_commands=smtp.max_commands_without_mail,
            max_data_seconds=max(DATA_SECONDS_MAX, smtp.timeout_seconds),
            stranger_data_budget=max(STRANGER_DATA_BUDGET, 4 * smtp.max_message_bytes),
        )

    @property
    def open(self) -> int:
        return self._open

    def admit(self, key: str) -> str | None:
        """Count a new connection, or return the reply that refuses it (then nothing is counted)."""
        if self._open >= self.max_connections and not self._make_room():
            return replies.TOO_MANY_CONNECTIONS
        if self._per_address[key] >= self.max_per_address:
            return replies.TOO_MANY_CONNECTIONS_FROM_ADDRESS
        self._open += 1
        self._per_address[key] += 1
        return None

    def _make_room(self) -> bool:
        """At the cap, an idle session without a login or a mail taken, or a stranger's slow body in
        DATA, gives way (`eviction.who_gives_way`); False when no session may."""
        session = who_gives_way(self.live, self.evict_after, self.evict_unproven_after, self.evict_after)
        if session is None:
            return False
        session.give_way()
        return True

    def release(self, key: str) -> None:
        self._open -= 1
        self._per_address[key] -= 1
        if self._per_address[key] <= 0:
            del self._per_address[key]

    async def answered(self, within: float) -> int:
        """At stop, once every write is done, before `close_all`: until each mail being answered has its
        reply (`gateway.smtp.stopping`), `within` seconds at most. Returns how many still have none."""
        return await stopping.answered(self.live, within)

    def close_all(self) -> int:
        """At stop, after `answered`: each session still connected hears 421 and is closed (one still
        owing its mail's outcome, without a reply: `gateway.smtp.stopping`). Returns how many."""
        sessions, self.live = list(self.live), set()
        for session in sessions:
            stopping.close(session)
        return len(sessions)
