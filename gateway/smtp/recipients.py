"""RCPT's question to the links: does any SMSC link serve this number?

A number no link serves (only prefix links, none matching) was taken with 250, retried for the
whole validity and then bounced as expired a day later. Refused at RCPT instead, permanently, the
mail client tells its user at once which recipient failed. Both the daemon's sessions and an
intake worker's ask here: each has the config, and the links' routes are all the answer needs.
"""

from __future__ import annotations

from functools import lru_cache

import structlog

from gateway.config import Config
from gateway.routing import Router

log = structlog.get_logger(__name__)

# RFC 3463 X.1.2: the destination system does not exist or cannot take the mail.
NO_ROUTE = "550 5.1.2 <{}>: no SMSC link serves {}"

Routes = tuple[tuple[str, tuple[str, ...]], ...]


@lru_cache(maxsize=16)
def _router(routes: Routes) -> Router:
    """Built as the daemon's dispatcher builds its own (gateway/daemon.py), once per set of routes."""
    return Router(routes)


def router_for(cfg: Config) -> Router:
    """The router of `cfg`'s links: keyed by their routes, so a config loaded again shares it."""
    return _router(tuple((s.name, tuple(s.prefixes)) for s in cfg.smsc))


def unrouted(cfg: Config, number: str, address: str) -> str | None:
    """The RCPT refusal for an E.164 `number` no link serves, or None when some link does."""
    if router_for(cfg).serves(number):
        return None
    log.info("smtp.no_route", number=number)
    return NO_ROUTE.format(address, number)
