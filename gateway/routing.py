"""Which SMSC link a number goes to: longest matching prefix first, then the default links.

Several links may serve one prefix (two binds, two operators): they form one route and share its
parts, each part going to the least busy of them; a link that is down or has just refused a part
is passed over for the next one. A part leaves by the most specific route with a link up and
waits for a place in that route's window: a busy link is no reason to leave by a less specific one
(another operator, another price, and the parts of one long SMS split between two SMSCs, which the
phone cannot join). Only a route whose links are all down (or have just refused the part) fails
over to the next.

`ReadyParts` keeps the dispatcher's parts claimed ahead in one queue per link, so that parts
waiting for a busy link never stand in front of parts for another (one shared queue did: a slow
prefix link stalled every destination).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from typing import Generic, Protocol, TypeVar

# Long SMS whose link is remembered, so that their later parts follow the first (oldest forgotten).
MAX_PINS = 10_000


class Router:
    def __init__(self, routes: Iterable[tuple[str, Iterable[str]]]) -> None:
        self._by_prefix: list[tuple[str, str]] = []  # (prefix, link), longest prefix first
        self._default: list[str] = []
        for link, prefixes in routes:
            prefixes = list(prefixes)
            if not prefixes:
                self._default.append(link)
            for prefix in prefixes:
                self._by_prefix.append((prefix, link))
        self._by_prefix.sort(key=lambda pl: -len(pl[0]))  # stable: config order within a length

    def routes(self, destination: str) -> list[list[str]]:
        """The links able to send to `destination`, grouped by route (a prefix, then the default
        links), most specific first; each link appears once, in its most specific route."""
        routes: list[list[str]] = []
        seen: set[str] = set()
        last = None
        for prefix, link in self._by_prefix:
            if not destination.startswith(prefix) or link in seen:
                continue
            if prefix != last:
                routes.append([])
                last = prefix
            routes[-1].append(link)
            seen.add(link)
        default = [link for link in self._default if link not in seen]
        if default:
            routes.append(default)
        return routes

    def candidates(self, destination: str) -> list[str]:
        """Links able to send to `destination`, in the order to try them."""
        return [link for route in self.routes(destination) for link in route]


class Routable(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def message_id(self) -> int: ...
    @property
    def destination(self) -> str: ...
    @property
    def udh(self) -> bytes: ...


P = TypeVar("P", bound=Routable)


class _LinkQueue(Generic[P]):
    """One link's parts: first in, first out within an account, the accounts in turn. Why in turn:
    a queue may hold more than the link's claim-ahead (parts claimed while another link waited),
    and another account's SMS claimed after them must not wait behind them all."""

    __slots__ = ("_by_owner", "_turns", "size")

    def __init__(self) -> None:
        self._by_owner: dict[object, deque[P]] = {}
        self._turns: deque[object] = deque()  # owners with parts, the next to go first
        self.size = 0

    def push(self, owner: object, part: P) -> None:
        parts = self._by_owner.get(owner)
        if parts is None:
            parts = self._by_owner[owner] = deque()
            self._turns.append(owner)
        parts.append(part)
        self.size += 1

    def pop(self) -> P:
        owner = self._turns.popleft()
        parts = self._by_owner[owner]
        part = parts.popleft()
        if parts:
            self._turns.append(owner)
        else:
            del self._by_owner[owner]
        self.size -= 1
        return part

    def items(self) -> Iterator[tuple[object, P]]:
        for owner in self._turns:
            for part in self._by_owner[owner]:
                yield owner, part


class ReadyParts(Generic[P]):
    """Parts waiting for a place in their link's window, one queue per link.

    A part is given its link when it comes in, and again when the set of links that are up
    changes (a link down hands its parts to the next route; a link back takes its own again). The
    parts of one long SMS are pinned to the link its first part was given while that link is up,
    so they reach the phone through one SMSC and can be joined. Each part comes with its owner (the
    account), whose parts take turns with the other owners' in their link's queue.
    """

    def __init__(self, router: Router) -> None:
        self.router = router
        self._queues: dict[str, _LinkQueue[P]] = {}
        self._pins: dict[int, str] = {}  # message id -> the link its parts leave by
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[P]:
        for queue in self._queues.values():
            for _owner, part in queue.items():
                yield part

    def queued(self, link: str) -> int:
        queue = self._queues.get(link)
        return queue.size if queue else 0

    def target(
        self, part: P, up: Set[str], avoid: Mapping[int, set[str]], load: Callable[[str], float]
    ) -> str | None:
        """The link for the part: its pinned link while up, else the least loaded of the most
        specific route with a link up; a link that just refused the part only when no other is up."""
        refused = avoid.get(part.id, ())
        pinned = self._pins.get(part.message_id)
        if pinned is not None and pinned in up and pinned not in refused:
            return pinned
        fallback = None
        chosen = None
        for route in self.router.routes(part.destination):
            fresh = [name for name in route if name in up and name not in refused]
            if fresh:
                chosen = fresh[0] if len(fresh) == 1 else min(fresh, key=load)
                break
            if fallback is None:
                fallback = next((name for name in route if name in up), None)
        chosen = chosen or fallback
        if chosen is not None and part.udh:
            self._pin(part.message_id, chosen)
        return chosen

    def _pin(self, message_id: int, link: str) -> None:
        pins = self._pins
        if pins.get(message_id) != link:
            pins.pop(message_id, None)
            pins[message_id] = link
            if len(pins) > MAX_PINS:
                del pins[next(iter(pins))]

    def add(
        self,
        parts: Iterable[tuple[object, P]],
        up: Set[str],
        avoid: Mapping[int, set[str]],
        load: Callable[[str], float],
    ) -> list[P]:
        """Queue each (owner, part) for the part's link; returns the parts no link that is up can send."""
        unroutable: list[P] = []
        for owner, part in parts:
            name = self.target(part, up, avoid, load)
            if name is None:
                unroutable.append(part)
                continue
            queue = self._queues.get(name)
            if queue is None:
                queue = self._queues[name] = _LinkQueue()
            queue.push(owner, part)
            self._count += 1
        return unroutable

    def take(self, link: str) -> P | None:
        """The next part waiting for `link`, or None."""
        queue = self._queues.get(link)
        if not queue or not queue.size:
            return None
        self._count -= 1
        return queue.pop()

    def retarget(self, up: Set[str], avoid: Mapping[int, set[str]], load: Callable[[str], float]) -> list[P]:
        """The links that are up changed: every part goes to the link it would be given now (in its
        old order); returns those no link that is up can send."""
        moving: list[tuple[object, P]] = []
        for name, queue in list(self._queues.items()):
            kept: _LinkQueue[P] = _LinkQueue()
            for owner, part in queue.items():
                if self.target(part, up, avoid, load) == name:
                    kept.push(owner, part)
                else:
                    moving.append((owner, part))
            self._queues[name] = kept
        self._count -= len(moving)
        return self.add(moving, up, avoid, load)

    def remove(self, ids: Set[int]) -> list[P]:
        """Take the parts with these ids out of their queues (an account suspended meanwhile)."""
        removed: list[P] = []
        for name, queue in list(self._queues.items()):
            kept: _LinkQueue[P] = _LinkQueue()
            for owner, part in queue.items():
                if part.id in ids:
                    removed.append(part)
                else:
                    kept.push(owner, part)
            self._queues[name] = kept
        self._count -= len(removed)
        return removed

    def clear(self) -> list[P]:
        """Every part, and the queues emptied."""
        parts = list(self)
        self._queues.clear()
        self._count = 0
        return parts
