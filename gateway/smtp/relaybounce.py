"""The null sender at the relay port: a bounce from the `[mail] relay` host, and the refusal of one
from anywhere else.

A recipient's server that refuses an answer mail after the relay took it returns the bounce to the
gateway's `from_address` by way of that relay, which hands it on with `MAIL FROM:<>` from its own
address. MAIL took the null sender only from a client network some account lists, so such a bounce
heard "Relay access denied ... use the submission port" unless an admin had put the relay into an
account's networks: the answer stayed `sent` and its copy never went to the fallback address.

Now the relay's own addresses (`gateway.relayaddresses`, as written or resolved) may send the null
sender too, but only to what a bounce is for: the gateway's own mailboxes (`postmaster.bounce_home`)
and, where premium numbers are set, a premium SMS's answer address, which takes the null sender from
anyone already. Every other recipient, a phone above all, is refused at RCPT as before: the relay's
address on no account's network sends no SMS.
"""

from __future__ import annotations

from aiosmtpd.smtp import Envelope

from gateway import premium
from gateway.relayaddresses import normal
from gateway.smtp import postmaster, recipients, replies
from gateway.smtp.gate import Gate, Sender

# MAIL's refusal of the null sender from a client on no account's network that is not the relay: a
# bounce has no login, so "use the submission port" sent its admin the wrong way.
NULL_SENDER_NOT_TRUSTED = (
    "550 5.7.1 Relay access denied: client host not allowed to relay; the null sender <> (a bounce)"
    " is taken only from the gateway's mail relay or a mail server on an account's network"
)
# RCPT of anything but the gateway's own mailboxes in the relay's bounce: every one it takes is named
# (`refusal`), the premium answer addresses only where premium numbers are set.
NOT_A_BOUNCES_RECIPIENT = (
    "550 5.7.1 <{address}>: Relay access denied: the null sender <> from the mail relay is taken only"
    " for the gateway's own mailboxes: its address <{own}>, postmaster and abuse{premium}"
)
PREMIUM_ANSWERS = ", and a premium SMS's answer address (premium-..., confirm-...)"
MARK = "relay_bounce"  # the envelope's key: MAIL took <> from the relay, not from an account's network


def taken(envelope: Envelope, mail_options: list[str], *, from_relay: bool) -> str:
    """MAIL's reply to the null sender it takes, the envelope marked where it came from the relay.
    aiosmtpd reads an empty `mail_from` as "no MAIL yet": the envelope keeps `<>` (relay.NULL_PATH),
    the gateway's own reads `Sender.mail_from`, ""."""
    envelope.mail_from = "<>"
    envelope.mail_options.extend(mail_options)
    envelope.smsgw = Sender("", None, None)  # type: ignore[attr-defined]
    envelope.__dict__[MARK] = from_relay
    return replies.OK_SENDER


async def from_relay(gate: Gate, client_ip: str | None) -> bool:
    """Whether `client_ip` is one of the relay host's addresses (a name resolved off the loop, kept
    for minutes: one lookup however many sessions send the null sender)."""
    if client_ip is None or (ip := normal(client_ip)) is None:
        return False
    return ip in await gate.relay_addresses.current()


def refusal(gate: Gate, envelope: Envelope, local: str, domain: str, address: str) -> str | None:
    """RCPT's refusal in the relay's bounce of a recipient that is no bounce's, else None."""
    if not envelope.__dict__.get(MARK):
        return None
    cfg = gate.config
    if postmaster.bounce_home(getattr(envelope, "smsgw", None), cfg, local, domain):
        return None
    if cfg.premium.tariffs and premium.target(local) is not None:
        return None  # as from any sender while premium numbers are set
    premium_too = PREMIUM_ANSWERS if cfg.premium.tariffs else ""
    said = NOT_A_BOUNCES_RECIPIENT.format(address=address, own=cfg.mail.from_address, premium=premium_too)
    return recipients.refused(envelope, address, said)
