"""One phone's submits a second apart over every bind of one SMSC account, not over each link alone.

A CIMD2 report names its SMS by the SMSC's 060 stamp, of one second, and the phone (`spacing.py`).
More binds to one account are how one gets more throughput, and the dispatcher sends a phone's next
SMS by another bind when the first is full or down (`gateway.linkchoice`); with one spacing a link,
that SMS went in the same second as the one before it, the SMSC gave both one key, and their reports
could not be told apart (the store then keeps them unmatched: `gateway.store.sharedkeys`). The links
of one host, port and login share one `Spacing`: the phone's SMS wait their second whichever bind
takes them, and, its lock taken in turn, in the order they reached the links.

One per event loop: a `Spacing` holds the loop's locks and timers. Binds to several hosts that name
one `smsc_account` share none (the link does not know it); their keys, when equal, are still caught
by the store.
"""

from __future__ import annotations

import asyncio
from weakref import WeakKeyDictionary

from smsc.cimd2.spacing import Spacing
from smsc.settings import LinkSettings

_LOOPBACK = ("localhost", "localhost.localdomain", "ip6-localhost", "::1")
_SHARED: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int, str], Spacing]] = (
    WeakKeyDictionary()
)


def account_of(cfg: LinkSettings) -> tuple[str, int, str]:
    """A bind's SMSC account: its host (a final dot, case and the loopback's names make no other),
    port and login."""
    host = cfg.host.strip().lower().rstrip(".").strip("[]")
    host = "loopback" if host in _LOOPBACK or host.startswith("127.") else host
    return host, cfg.port, cfg.system_id


def account_spacing(cfg: LinkSettings) -> Spacing:
    """The spacing of every bind of `cfg`'s account on the running loop."""
    by_account = _SHARED.setdefault(asyncio.get_running_loop(), {})
    spacing = by_account.get(key := account_of(cfg))
    if spacing is None:
        spacing = by_account[key] = Spacing()
    return spacing
