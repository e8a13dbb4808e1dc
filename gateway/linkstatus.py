"""The links as the status file and the panel show them: state, window, submits and their rate,
and since when a link is down.

Each reader keeps its own rate window (the status file is written every 2 s, the panel is read
when someone looks), so one reading does not shorten the other's. Within the daemon's web, /metrics
has a window of its own (`METRICS`) and the operator's pages showing the rate share one (`PANEL`);
a page that shows no rate (a message page, /healthz) reads with none (`window=None`) and moves
neither. Once every reader shared one, each company admin's message page view started the gauge's
window afresh: a scrape right after one read the submits of the last instant alone, 0.0 when none
went in it, whatever the link sent since the scrape before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.adminrules import age
from gateway.routing import OTHER_NUMBERS, Route, Router, route_parts, unserved

Links = Mapping[str, Mapping[str, Any]]  # `LinkView`'s snapshot, or the status file's "links"
Routes = Sequence[Route]  # `Config.routes()`

# The rate windows `LinkView` keeps (module docstring).
PANEL = "panel"
METRICS = "metrics"


class LinksReader(Protocol):
    """`LinkView` as the web calls it: a snapshot, its rate since `window`'s last reading."""

    def __call__(self, window: str | None = PANEL) -> dict[str, dict[str, Any]]: ...


def no_links(window: str | None = PANEL) -> dict[str, dict[str, Any]]:
    """The reader of a web with no dispatcher (tests, the panel alone): no links."""
    return {}


# A link down longer than this is listed on the dashboard's "Needing attention": a reconnect after
# an SMSC's restart or a dropped connection takes seconds and needs nobody.
ATTENTION_SECONDS = 60.0


def down_words(since: float, now: float, when: Callable[[float], str]) -> str:
    """ "down since 2026-12-03 08:08:12 (21 min)": `status`, the panel and `queue show` alike."""
    return f"down since {when(since)} ({age(max(0.0, now - since))})"


def _up(links: Links) -> Callable[[str], bool]:
    return lambda name: links.get(name, {}).get("state") == "active"


@dataclass(frozen=True, slots=True)
class LinkDown:
    """A link down past ATTENTION_SECONDS as the dashboard lists it: since when, and what waits."""

    name: str
    down: str  # "down since … (21 min)"
    waits: str  # its SMS wait, and how many parts; or that other links take its numbers
    last_error: str


def links_down(
    links: Links,
    routes: Routes,
    now: float,
    when: Callable[[float], str],
    pinned: Mapping[str, int] | None = None,
    siblings: Mapping[str, Sequence[str]] | None = None,
    held: int = 0,
) -> list[LinkDown]:
    """The links down for more than ATTENTION_SECONDS at `now`, with what waits for them.

    The number of parts is the queue-depth reader's last count of every part waiting (`queued`): with
    no link up they all wait for the links down; with another up, the prefixes no link up takes say
    whose SMS wait. A link whose numbers another link up takes is listed all the same (the SMS go,
    without the spare), said so. `pinned` and `siblings` as for `gateway.routing.unserved`: a premium
    answer leaves by its vote's link (or another bind of that SMSC account) alone, and the dashboard
    said its numbers went by the other links while `status` and /healthz said it waited. `held`: how
    many of the parts waiting are held for quiet hours, which no link would send now: "41 part(s)
    waiting in all" read as 41 waiting for the link when 40 were held."""
    up = _up(links)
    stuck = set(unserved(routes, up)) if routes else set()
    any_up = any(up(name) for name in links)
    names = {link_name for link_name, _ps, _excl in map(route_parts, routes)}
    out = []
    for name, link in sorted(links.items()):
        since = link.get("down_since")
        if since is None or up(name) or link.get("state") == "stopped" or now - since <= ATTENTION_SECONDS:
            continue
        prefixes = [p for link_name, ps, _excl in map(route_parts, routes) if link_name == name for p in ps]
        theirs = [r for r in (prefixes or [OTHER_NUMBERS]) if r in stuck]
        answers = _pinned_to(name, pinned or {}, siblings or {}, names, up)
        queued = link.get("queued")
        count = f"{queued} part(s)" if queued is not None else "the SMS"
        quiet = f", {min(held, queued or held)} of them held for quiet hours" if held else ""
        if not any_up:
            waits = f"no link is up: {count} waiting to go{quiet}"
        elif theirs:
            waits = (
                f"no link up for {', '.join(theirs)}: their SMS wait ({count} waiting for all links{quiet})"
            )
        else:
            waits = "its numbers go by the other links meanwhile"
        if any_up and answers:
            # As `status` says it ("routes no link up for 1 part(s) pinned to link ext"): they wait.
            said = f"{answers} part(s) pinned to it wait (premium answers leave by their vote's link alone)"
            waits = said if waits.startswith("its numbers") else f"{waits}; {said}"
            if not theirs:
                waits += "; its other numbers go by the other links meanwhile"
        out.append(LinkDown(name, down_words(since, now, when), waits, str(link.get("last_error") or "")))
    return out


def _pinned_to(
    name: str,
    pinned: Mapping[str, int],
    siblings: Mapping[str, Sequence[str]],
    names: set[str],
    up: Callable[[str], bool],
) -> int:
    """The parts pinned to link `name` or another bind of its SMSC account that wait, no such link
    being up (the count `unserved` names)."""
    total = 0
    for via, count in pinned.items():
        own = [via, *(n for n in siblings.get(via, ()) if n in names)]
        if count > 0 and via in names and name in own and not any(up(n) for n in own):
            total += count
    return total


def waiting_for(
    destination: str, links: Links, routes: Routes, now: float, when: Callable[[float], str]
) -> str | None:
    """Why a waiting SMS to `destination` does not go, when no link that may take it is up: "no link
    up for +48601123456 (link orange down since … (21 min))"; None when one is up."""
    candidates = Router(routes).candidates(destination)
    if not candidates or any(_up(links)(name) for name in candidates):
        return None
    said = []
    for name in candidates:
        link = links.get(name, {})
        since = link.get("down_since")
        state = (
            down_words(float(since), now, when)
            if since is not None
            else str(link.get("state") or "not running")
        )
        said.append(f"link {name} {state}")
    return f"no link up for {destination} ({'; '.join(said)})"


class LinkView:
    """Call it for a snapshot of every link of `dispatcher` (a `gateway.dispatcher.Dispatcher`)."""

    def __init__(self, dispatcher: Any, clock: Callable[[], float] = time.time) -> None:
        self.dispatcher = dispatcher
        self.clock = clock
        self.started = time.monotonic()
        # Per window, per link: when it was last read and the submits counted then.
        self._seen: dict[str, dict[str, tuple[float, int]]] = {}

    def __call__(self, window: str | None = PANEL) -> dict[str, dict[str, Any]]:
        """Every link's snapshot; its rate since `window` was last read, which this reading starts
        afresh. None: a reader that shows no rate, moving no window (its rate is the panel's)."""
        d = self.dispatcher
        now = time.monotonic()
        wall = self.clock()
        seen = self._seen.setdefault(window or PANEL, {})
        out: dict[str, dict[str, Any]] = {}
        for name, link in d.links.items():
            pacer = d.pacers[name]
            stats = link.stats()
            then, sent = seen.get(name, (self.started, 0))
            if window is not None:
                seen[name] = (now, pacer.sent)
            out[name] = {
                "rate": round((pacer.sent - sent) / (now - then), 1) if now > then else 0.0,
                "state": str(link.state),
                # The wire's window, not the dispatcher's places (a CIMD2 link's are more: LinkStats.places),
                # nor the places of submits waiting for their rate or a throttle pause, said apart.
                "in_flight": min(pacer.in_flight - pacer.pacing, stats.window),
                "pacing": pacer.pacing,
                "window": stats.window,
                "rate_limit": pacer.rate,  # lower than the configured one after the SMSC throttled
                "rate_configured": pacer.max_rate,
                "submitted": pacer.sent,
                "throttled": stats.throttled,
                "reconnects": stats.reconnects,
                "possible_duplicates": d.possible_duplicates(name),
                # What the SMSC sent that the link could not take while it stayed up (bad checksums,
                # answers to nothing, NACKs, MOs acknowledged and dropped as unreadable): counted in
                # the link and shown nowhere, while status said "active, reconnects 0".
                "faults": protocol_faults(stats.extra),
                "last_error": stats.last_error,  # why it is not up (or last went down), for `status`
                "last_error_at": stats.last_error_at,
                # Since when it is down (wall clock, None while up) and in how many attempts: the last
                # error's time moves with each retry, and a 30-s blip read as a 20-min outage.
                "down_since": stats.down_since,
                "down_for": None if stats.down_since is None else max(0.0, wall - stats.down_since),
                "down_attempts": stats.down_attempts,
                # The parts waiting to go in all, as the queue-depth reader last counted them (no
                # count of its own): with no other link up, those waiting for this one.
                "queued": d.backlog,
            }
        return out


# The links' own counts (`LinkStats.extra`) of what their SMSC sent wrong, by name as the links keep them.
FAULT_KINDS = (
    "checksum_errors",
    "parse_errors",
    "bad_pdus",
    "timeouts",
    "nacks",
    "unexpected",
    "mo_rejected",
    "reports_rejected",
)


def protocol_faults(extra: dict[str, str]) -> dict[str, int]:
    """The non-zero fault counts among a link's extra figures (their values are text, `peer` too)."""
    faults = {}
    for kind in FAULT_KINDS:
        value = extra.get(kind, "0")
        if value.isdigit() and int(value):
            faults[kind] = int(value)
    return faults
