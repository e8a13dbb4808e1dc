"""A mail server's recipient verification probe: each number hears the answer its users' mail would.

Postfix's `reject_unverified_recipient` (its address verification guide suggests it for a relay
domain) asks the next hop whether a recipient exists with `MAIL FROM:<double-bounce@its.host>`,
`RCPT TO:<…>` and a QUIT before DATA. That sender is no user, so the relay port refused it at MAIL,
every probe failed, and the company's server answered each of its users `450 4.1.1 … unverified
address`: no SMS went out. From a client's own network such a sender is taken at MAIL as the
network's account (its countries and opt-outs apply at RCPT, a suspended one's probe is refused as
its users are), and a number it names is answered but never taken: a DATA after it has no recipient
(`503`). Postfix's own notices from that sender to postmaster go to the admin as before. A user who
happens to be called so stays the user.
"""

from __future__ import annotations

from aiosmtpd.smtp import Envelope

from gateway.smtp import replies
from gateway.smtp.gate import Sender
from gateway.store.db import Store

# Postfix's `double_bounce_sender` (its `address_verify_sender` by default).
PROBE_LOCAL_PARTS = frozenset({"double-bounce"})


def verify_probe(address: str) -> bool:
    """Whether `address` is a verification probe's sender."""
    local, at, _ = address.rpartition("@")
    return bool(at) and local.casefold() in PROBE_LOCAL_PARTS


def probe_sender(store: Store, address: str, trusted: frozenset[int]) -> Sender | None:
    """The probe's sender as RCPT judges it, for a probe from a client's network (`trusted`, no user
    of that address); None: no probe. A suspended account's probe is no exception: MAIL refuses it as
    its users (their suspension reply, at MAIL, or at RCPT with premium numbers), where it heard "Relay
    access denied" and Postfix passed that on in each `unverified address` reply: the users and the
    mail admin looked into network access instead of the suspension."""
    if not trusted or not verify_probe(address):
        return None
    [owner] = trusted if len(trusted) == 1 else [None]
    account = store.accounts.account_by_id(owner) if owner is not None else None
    return Sender(address, account, None)


def taken(envelope: Envelope, probe: Sender, mail_options: list[str]) -> str:
    """MAIL's reply to a probe, its envelope marked so that RCPT answers numbers without taking them."""
    envelope.mail_from = probe.mail_from
    envelope.mail_options.extend(mail_options)
    envelope.smsgw = probe  # type: ignore[attr-defined]
    envelope.__dict__["probe"] = True
    return replies.OK_SENDER
