"""A mail server's recipient verification probe, taken at MAIL as a bounce is.

Postfix's `reject_unverified_recipient` (its address verification guide suggests it for a relay
domain) asks the next hop whether a recipient exists with `MAIL FROM:<double-bounce@its.domain>`,
`RCPT TO:<…>` and a QUIT before DATA. That sender is no user, so the relay port refused it at MAIL,
every probe failed, and the company's server answered each of its users `450 4.1.1 … unverified
address`: no SMS went out. From a client's own network such a sender is taken as the null sender
is: RCPT answers each number as for any mail, and a mail that still follows is recorded, never sent.
A user who happens to be called so stays the user.
"""

from __future__ import annotations

# Postfix's `double_bounce_sender` (its `address_verify_sender` by default).
PROBE_LOCAL_PARTS = frozenset({"double-bounce"})


def verify_probe(address: str) -> bool:
    """Whether `address` is a verification probe's sender (checked only for no user, from a trusted
    network)."""
    local, at, _ = address.rpartition("@")
    return bool(at) and local.casefold() in PROBE_LOCAL_PARTS
