"""The relay login of a send and of a probe (`SmtpRelayMailer`), in an order that costs the relay
the fewest failed logins.

aiosmtplib's `login` tries every mechanism the relay offers, CRAM-MD5 first, until one is taken,
as some relays offer ones they do not take: Dovecot keeping hashed passwords offers CRAM-MD5 and
refuses every account with it, and takes PLAIN. So every send cost such a relay one failed login,
and a probe that tried only the first mechanism was refused for good, backed off to an hour and
never woke the mail deferred. Here the mechanism the last login taken used (a send's or a probe's)
goes first, and on a TLS session PLAIN and LOGIN go before CRAM-MD5, which adds nothing under TLS.
A send goes on through every mechanism offered, as aiosmtplib's `login`; a probe stops at its
second refusal, or at a 535 to PLAIN or LOGIN (the password itself refused: every mechanism checks
the same one), so a wrong password costs the relay one or two failed logins a probe, not three.
"""

from __future__ import annotations

import aiosmtplib

# The mechanisms that hand the relay the password itself: a 535 to one is the password's refusal,
# where one to CRAM-MD5 may be the mechanism's (a relay keeping hashed passwords cannot check it).
CLEAR_PASSWORD = frozenset({"plain", "login"})
CREDENTIALS_REFUSED = 535
PROBE_REFUSALS = 2  # the most failed logins one probe costs the relay


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


async def greet(client: aiosmtplib.SMTP) -> None:
    """EHLO, or HELO to a relay without ESMTP, which a send's transaction goes on with too."""
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        await client.helo()


async def log_in(
    client: aiosmtplib.SMTP, username: str, password: str, known: str | None, *, probe: bool
) -> str | None:
    """Logs in, raising the last refusal as `login` does (with no mechanism offered, `login`'s own
    error); returns the mechanism taken, for the next login to try first."""
    if client.is_ehlo_or_helo_needed:
        await greet(client)  # no ESMTP: no AUTH either, which `login` says
    order = login_order(client, known)
    if not order:
        await client.login(username, password)
        return None
    refusals: list[aiosmtplib.SMTPAuthenticationError] = []
    for mechanism in order:
        try:
            await getattr(client, f"auth_{mechanism.replace('-', '')}")(username, password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            refusals.append(exc)
            if probe and (
                len(refusals) >= PROBE_REFUSALS
                or (exc.code == CREDENTIALS_REFUSED and mechanism in CLEAR_PASSWORD)
            ):
                break
            continue
        return mechanism
    raise refusals[-1]
