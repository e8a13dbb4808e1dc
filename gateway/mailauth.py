"""The relay login of a send and of a probe (`SmtpRelayMailer`), in an order that costs the relay
the fewest failed logins.

aiosmtplib's `login` tries every mechanism the relay offers, CRAM-MD5 first, until one is taken,
as some relays offer ones they do not take: Dovecot keeping hashed passwords offers CRAM-MD5 and
refuses every account with it, and takes PLAIN; some Exchange and old Sendmail setups offer PLAIN
and answer it 535, for every account or some, and take LOGIN. So every send cost such a relay one
failed login, and a probe that gave up at the first refusal, or at a 535 to PLAIN, was refused for
good, backed off to an hour and never woke the mail deferred, while every send went. Here the
mechanism the last login taken used (a send's or a probe's) goes first, and on a TLS session PLAIN
and LOGIN go before CRAM-MD5, which adds nothing under TLS: so after a restart, where the mechanism
taken is forgotten, the first login over TLS costs a relay refusing CRAM-MD5 no failed login. In
clear (a loopback relay, or `relay_starttls = false`) CRAM-MD5 still goes first, as the one mechanism
keeping the password off the wire. A send goes on through every mechanism offered, as aiosmtplib's
`login`; a probe, in the same order, stops at its second refusal, so a wrong password costs the relay
at most two failed logins a probe, and the probes back off as for any refused login
(`gateway.relayprobepace`).
"""

from __future__ import annotations

import aiosmtplib

# The mechanisms that hand the relay the password itself, which TLS makes as safe as CRAM-MD5.
CLEAR_PASSWORD = frozenset({"plain", "login"})
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
            # Even a 535 to PLAIN may be the mechanism's and not the password's (a relay taking LOGIN
            # alone): the next mechanism is tried, within a probe's limit.
            refusals.append(exc)
            if probe and len(refusals) >= PROBE_REFUSALS:
                break
            continue
        return mechanism
    raise refusals[-1]
