"""What `smsgw status` says of each SMSC link the daemon's status file reports: its state, how long it
has been down, its window and pace, and the rate a throttling SMSC slowed it to. Apart from
`gateway.cli.status`, which reads the store and decides the exit code: these only word what the
status file says."""

from __future__ import annotations

from typing import Any

from gateway.cli.statusdaemon import when
from gateway.cli.terminal import one_line


def link_lines(status: dict[str, Any], now: float) -> list[str]:
    """A line per link: "link a: active, window 3/10, 12/s now (max 100/s), submitted ...", and after
    the window the submits that wait for their pace: "window 1/10, 9 waiting for its rate 0.5/s"."""
    return [
        f"link {name}: {link['state']}{_down(link, now)}, window {link['in_flight']}/{link['window']},"
        + (f" {n} waiting for its rate {_rate(link['rate_limit'])}/s," if (n := link.get("pacing")) else "")
        + f" {link.get('rate', 0)}/s now (max {allowed(link)}), submitted {link['submitted']},"
        f" throttled {link['throttled']},"
        f" reconnects {link['reconnects']}"
        # Submits on the wire when the link dropped, sent again by another: the phone may have two.
        + (f", possible duplicates {dups}" if (dups := link.get("possible_duplicates", 0)) else "")
        # What the SMSC sent that the link could not take while it stayed up (see the log).
        + (
            f", protocol faults {', '.join(f'{k} {v}' for k, v in faults.items())}"
            if (faults := link.get("faults"))
            else ""
        )
        # Why it is not up: a wrong host or password is the likeliest trouble of a first day.
        + (
            f", last error {when(link['last_error_at'])}: {one_line(link['last_error'])}"
            if link.get("last_error") and link["state"] != "active"
            else ""
        )
        for name, link in status["links"].items()
    ]


def links_words(status: dict[str, Any] | None) -> str:
    """ "; link a: active, throttled 14": what the links do while the queue stands."""
    links = (status or {}).get("links", {})
    said = ", ".join(
        f"link {n}: {link.get('state')}, throttled {link.get('throttled', 0)}" for n, link in links.items()
    )
    return f"; {said}" if said else ""


def _down(link: dict[str, Any], now: float) -> str:
    """ ", down since 2026-12-03 08:08:12 (21 min, 40 attempts)" for a link not up: the last error's
    time moves with each retry, so only this tells a 30-s blip from a 20-minute outage."""
    from gateway.linkstatus import down_words

    since = link.get("down_since")
    if since is None or link.get("state") == "active":
        return ""
    words = down_words(float(since), now, when)
    attempts = link.get("down_attempts") or 0
    return f", {words[:-1]}, {attempts} attempt(s))" if attempts else f", {words}"


def allowed(link: dict[str, Any]) -> str:
    """The rate a link may send at, and the configured one when a throttling SMSC slowed it down."""
    now, configured = link["rate_limit"], link.get("rate_configured", link["rate_limit"])
    if now >= configured:
        return f"{_rate(now)}/s"
    return f"{_rate(now)}/s, slowed from {_rate(configured)}/s after throttling"


def _rate(per_second: float) -> str:
    """A rate to one decimal ("1.4", "100"): the slowed rate read "1.39971", and `:g` writes a
    large configured one as "1e+06"."""
    return f"{per_second:.1f}".removesuffix(".0")
