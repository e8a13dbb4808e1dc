"""RCPT's question to the links: does any SMSC link serve this number? And the RCPT address kept.

A number no link serves (only prefix links, none matching) was taken with 250, retried for the
whole validity and then bounced as expired a day later. Refused at RCPT instead, permanently, the
mail client tells its user at once which recipient failed. Both the daemon's sessions and an
intake worker's ask here: each has the config, and the links' routes are all the answer needs.

The address a number was given by at RCPT is kept with its SMS (`as_given`): a bounce names it as
Final-Recipient (RFC 3464 2.3.2), which is what the sender's bounce processing knows the mail by.
A recipient refused at RCPT is logged with its sender (`refused`): nothing else keeps it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import structlog

from gateway.config import Config
from gateway.routing import Router
from smsc.logthrottle import LogThrottle

log = structlog.get_logger(__name__)

# RFC 3463 X.1.2: the destination system does not exist or cannot take the mail.
NO_ROUTE = "550 5.1.2 <{}>: no SMSC link serves {}"

# RFC 5321 4.5.3.1: a local part of 64 octets, "@" and a domain of 255.
RCPT_MAX = 320

Routes = tuple[tuple[str, tuple[str, ...], bool], ...]


@lru_cache(maxsize=16)
def _router(routes: Routes) -> Router:
    """Built as the daemon's dispatcher builds its own (gateway/daemon.py), once per set of routes."""
    return Router(routes)


def router_for(cfg: Config) -> Router:
    """The router of `cfg`'s links: keyed by their routes, so a config loaded again shares it."""
    return _router(tuple((s.name, tuple(s.prefixes), s.exclusive) for s in cfg.smsc))


def unrouted(cfg: Config, number: str, address: str) -> str | None:
    """The RCPT refusal for an E.164 `number` no link serves, or None when some link does."""
    if router_for(cfg).serves(number):
        return None
    log.info("smtp.no_route", number=number)
    return NO_ROUTE.format(address, number)


def as_given(address: str | None) -> str | None:
    """The RCPT address to keep with an SMS, or None (its bounce then names the E.164 number).

    Kept as the client wrote it, which is what its bounce processing matches; an address longer
    than any RFC 5321 allows is no one's, and is not stored (aiosmtpd takes lines up to 1001)."""
    if not address or len(address) > RCPT_MAX:
        return None
    return address


def refused(
    envelope: Any, address: str, reply: str, number: str | None = None, throttle: LogThrottle | None = None
) -> str:
    """A recipient refused at RCPT, logged with its sender: the client alone had the reply, and an
    operator asked "my SMS to 601… never arrived" found nothing under the number or the address.

    With `throttle` (a refusal a client repeats at will: 452 past the 100th recipient, 1,900 lines
    for one session's 10,000 RCPTs) a user's line goes through it: one a second, the rest counted."""
    sender = getattr(envelope, "smsgw", None)  # gate.Sender: who MAIL took the mail from
    # A stranger's (MAIL lets anyone through to premium numbers): an open-relay probe's every RCPT
    # would be a line; the operator looks for the users' refused recipients.
    user = sender is not None and sender.user is not None
    said: Any = log.debug if not user else log.info if throttle is None else _throttled(throttle, reply)
    said(
        "smtp.rcpt_refused",
        sender=sender.mail_from if sender is not None else envelope.mail_from,
        rcpt=address,
        number=number,
        reply=reply,
    )
    return reply


def _throttled(throttle: LogThrottle, reply: str) -> Any:
    """`log.info` through `throttle`, one kind per reply code."""

    def said(event: str, **fields: Any) -> None:
        throttle.info(event, kind=f"rcpt_refused:{reply[:3]}", **fields)

    return said
