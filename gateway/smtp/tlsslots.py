"""The STARTTLS handshakes a port runs at once (`servers.TLS_HANDSHAKES_MAX`), and who gives way at the cap.

The cap bounds memory (see servers.py). A count alone let one address take every slot: 50 connections
(the per-address connection cap) that sent STARTTLS and then no ClientHello kept every other client
from TLS, so no user could log in on the submission port, for as long as that address reconnected
after each 10 s handshake bound. No login failed, so no lockout tripped.

So at the cap a newcomer may take a slot from an address that holds more of them than its own address
does, and the rest hold theirs:
- from an address holding at least two more, at once: one address can never hold every slot against
  another, however fast it reconnects (the oldest handshake past a time bound alone giving way was
  beaten by an address that replaced its own stalled handshakes before they were that old);
- from an address holding more, once its handshake has run past `STALLED_SECONDS` (a real client's
  takes milliseconds): stalled handshakes from many addresses, one each, give way too.
The biggest holder's oldest handshake goes first. A newcomer never takes from an address that holds as
few as its own: many parallel logins from one address (an office behind one NAT) all get their slots
while the port is below the cap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

STALLED_SECONDS = 1.0  # a handshake under way this long is stalled, not a client's real one

S = TypeVar("S", bound=Hashable)


@dataclass(slots=True, frozen=True)
class _Handshake:
    key: str  # the client's address as the connection limits count it (`acl.logins.client_key`)
    since: float  # the loop's time when its slot was taken


class HandshakeSlots(Generic[S]):
    """The handshakes under way on one port, by session, in the order they began."""

    def __init__(self) -> None:
        self._under_way: dict[S, _Handshake] = {}  # insertion order: the oldest first
        self._per_key: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._under_way)

    def held(self, key: str) -> int:
        return self._per_key[key]

    def taken(self, session: S, key: str, now: float, cap: int) -> tuple[bool, S | None]:
        """Whether `session`, from `key`, has a slot now, and the session whose slot it took (to be cut
        by the caller), if it took one. Without a slot, nothing is counted."""
        gone = None
        if len(self._under_way) >= cap:
            gone = self._giving_way(key, now)
            if gone is None:
                return False, None
            self.release(gone)
        self._under_way[session] = _Handshake(key, now)
        self._per_key[key] += 1
        return True, gone

    def release(self, session: S) -> None:
        """The session's handshake is over (done, failed, or it gave way); nothing if it held no slot."""
        handshake = self._under_way.pop(session, None)
        if handshake is None:
            return
        self._per_key[handshake.key] -= 1
        if self._per_key[handshake.key] <= 0:
            del self._per_key[handshake.key]

    def _giving_way(self, key: str, now: float) -> S | None:
        mine = self._per_key[key]
        chosen, most = None, 0
        for session, handshake in self._under_way.items():  # the oldest first: it wins a tie
            held = self._per_key[handshake.key]
            stalled = now - handshake.since >= STALLED_SECONDS
            if held > most and (held > mine + 1 or (held > mine and stalled)):
                chosen, most = session, held
        return chosen
