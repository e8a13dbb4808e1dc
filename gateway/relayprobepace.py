"""How often the relay is probed while mail waits for it (`gateway.relayprobe`), apart from it and
free of aiosmtplib, as `smsgw status` says it too.

A probe logs in as a send does (`gateway.mailauth`); after a refused login the probes alone log
in, with one AUTH mechanism each, a send failing at once with that refusal. A relay that refuses
our login, our TLS or its own certificate refuses it the same way at every probe until someone
changes the relay or the config (the password is read at the start): a probe every 30 s was some
120 failed logins an hour, and a relay with fail2ban (Postfix's SASL jail bans after about five in
ten minutes) banned the gateway's address within minutes, an Exchange lockout the shared account.
So after such a refusal the probes go twice as far apart each time, up to an hour, until a probe
gets through, a mail is taken or the daemon restarts (where a changed config is read). A 454 to AUTH
(the relay's authentication failing for now, RFC 4954) is no refusal of our setup, but the probes
back off after it the same way: Postfix logs it as the failed login fail2ban counts. A relay down,
silent or closing (a 421, to AUTH too) costs no login: probed every 30 s.
"""

from __future__ import annotations

PROBE_EVERY = 30.0  # seconds between probes while mail waits for the relay
PROBE_EVERY_MAX = 3600.0  # the mail's own back-off cap (`outboxbatch.mail_retry_delay`)
# The back-off doubles up to PROBE_EVERY_MAX, reached by 2**7: a higher power of a failed count
# that grows for ever while a password stays wrong overflows a float (OverflowError at 1024).
MOST_DOUBLINGS = 7


def probes_pace(refused: int) -> float:
    """PROBE_EVERY, twice as long for each refusal (or failed login), up to PROBE_EVERY_MAX."""
    return min(PROBE_EVERY * 2 ** min(refused, MOST_DOUBLINGS), PROBE_EVERY_MAX)


# The relay's refusals of our setup that a probe sees (`gateway.relayfaultkinds`' kinds): the same
# login, TLS or certificate is refused again until the relay or the config changes.
REFUSED_SETUP: frozenset[str] = frozenset(
    {"login refused", "no TLS for the login", "certificate refused", "no login in common"}
)
# A 454 to AUTH: the relay's trouble, for now, but each probe's login one more failed login at it.
LOGIN_FAILING = "login failing for now"
BACKS_OFF: frozenset[str] = REFUSED_SETUP | {LOGIN_FAILING}
