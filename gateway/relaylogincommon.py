"""The AUTH mechanisms the relay and smsgw have in common: the order a login tries them in
(`login_order`), and none.

A relay offering no AUTH mechanism smsgw speaks, or no AUTH at all, while `[mail] relay_username`
asks for a login: said as the relay's fault, with the mechanisms on each side.

aiosmtplib's `login` raised its own `SMTPException('No suitable authentication method found.')`:
no relay fault by its name (`gateway.relayfaultkinds`), so the mail waited out its own back-off
of up to an hour after the relay was fixed, status named no kind, and nothing said that the relay
offered, say, GSSAPI and NTLM alone. No AUTH command goes, so no failed login either: the probes
back off as after any refusal of our setup, since only a change of the relay or the config ends it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiosmtplib
import structlog

from gateway.relayloginstatus import FAILING, NO_COMMON, LoginEpisode, login_by
from gateway.secretmask import plain_line

if TYPE_CHECKING:
    from gateway.mailauth import RelayLogins

log = structlog.get_logger(__name__)

# The mechanisms that hand the relay the password itself, which TLS makes as safe as CRAM-MD5.
CLEAR_PASSWORD = frozenset({"plain", "login"})
OFFERED_MAX = 120  # characters of the relay's list: its EHLO line, not ours to print whole


class NoLoginInCommon(Exception):
    """No AUTH mechanism both the relay and smsgw speak: retried as the relay's setup, never failing
    the mail (`gateway.relayfaultkinds`: `no login in common`)."""


def no_mechanism_in_common(client: aiosmtplib.SMTP, logins: RelayLogins, *, probe: bool) -> NoLoginInCommon:
    """The error a login raises, said once in the log and shown by status until a login is taken or
    a mail goes."""
    ours = ", ".join(mechanism.upper() for mechanism in client.AUTH_METHODS)
    if client.supports_extension("auth"):
        offered = plain_line(", ".join(client.server_auth_methods).upper(), OFFERED_MAX) or "nothing"
        said = f"the relay offers AUTH {offered}; smsgw speaks {ours}"
    else:
        clear = "" if client.get_transport_info("sslcontext") is not None else " on a session in clear"
        said = f"the relay offers no AUTH{clear}; smsgw logs in with {ours} as [mail] relay_username is set"
    episode = logins.episode
    # A 454's episode says the relay's trouble already; one a mail taken ended leaves its gate alone.
    if logins.held is None and (episode is None or (episode.state != FAILING and episode.reply != said)):
        log.warning(
            "mail.relay_login_impossible",
            relay=f"{client.hostname}:{client.port}",
            reason=said,
            by=login_by(probe),
            note="mail stays queued: have the relay offer one of smsgw's mechanisms to the gateway, or"
            " leave [mail] relay_username out if the relay takes mail without a login",
        )
        logins.episode = LoginEpisode(NO_COMMON, logins.clock(), login_by(probe))
        logins.failing_said.clear()  # a 454 after this is the relay's trouble anew: warned again
        logins.episode.saw((), said, logins.clock())
    elif episode is not None and episode.state == NO_COMMON:
        episode.saw((), said, logins.clock())
    return NoLoginInCommon(said)


def login_order(client: aiosmtplib.SMTP, known: str | None) -> list[str]:
    """The mechanisms offered, in the order tried: `known` (the last one taken) first, then
    aiosmtplib's order, with CRAM-MD5 last on a TLS session."""
    offered = list(client.supported_auth_methods)
    if client.get_transport_info("sslcontext") is not None:
        offered.sort(key=lambda mechanism: mechanism not in CLEAR_PASSWORD)  # stable: PLAIN, LOGIN
    if known in offered:
        offered.remove(known)
        offered.insert(0, known)
    return offered
