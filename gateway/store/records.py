"""What goes into the queue and what comes out of it, as plain data.

The acceptance service builds `Acceptance` from a parsed email; the dispatcher works on
`ClaimedPart`s; `Finished` tells the notifier that a message reached its final state. Plain
data keeps the repositories free of the code paths that use them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NewPart:
    seq: int
    data_coding: int
    payload: bytes
    udh: bytes
    text: str


@dataclass(slots=True)
class NewMessage:
    recipient: str
    source: str
    text: str
    coding: int
    parts: list[NewPart]
    concatenated: bool = False  # parts need a concat UDH built from a per-destination reference
    state: str = "queued"
    not_before: float | None = None  # quiet hours: held until then, validity counted from then
    # The address the client named this number by at RCPT (`601120000@…`, a premium answer's
    # `premium-…@…`, as given): its bounce's Final-Recipient (RFC 3464 2.3.2). None where none was kept.
    rcpt: str | None = None
    # The mail itself asked to wait for quiet hours (Precedence: bulk, a mailing list's headers), not
    # only its account's `bulk` setting: turning that setting off releases the others at once.
    bulk: bool = False
    # The link it leaves by while that link is configured: a premium answer's, the link its vote came
    # by (the short code it is sent from is provisioned at that operator, not at the phone's).
    via: str | None = None
    # What the client's RCPT asked to be told (RFC 3461 NOTIFY: `never`, or some of `success,failure,
    # delay`; None: the account's `dlr_mail` decides) and the recipient it first named (ORCPT,
    # `type;address`) for its DSN's Original-Recipient.
    notify: str | None = None
    orcpt: str | None = None


@dataclass(slots=True)
class Acceptance:
    """Everything one DATA turns into; written in one transaction or not at all."""

    mail_from: str
    client_ip: str | None
    account_id: int | None
    user_id: int | None
    header_message_id: str | None
    dedup_key: str | None
    subject: str
    text: str
    messages: list[NewMessage]
    validity_seconds: float
    automatic: str | None = None
    removed: str | None = None
    # The References the mail carried, bounded (`forwarded.thread_refs`): the answers to its SMS
    # continue that chain, so that clients threading by References keep them in one thread.
    thread_refs: str | None = None
    # The envelope sender as received when `mail_from` is the sender without its BATV tag: DSNs go there.
    envelope: str | None = None
    # The mail's own expiry (Outlook's "Expires after"), when sooner than the validity: its SMS end
    # then, however long the write waited after the validity was reckoned.
    valid_until: float | None = None
    # RFC 3461 MAIL parameters: what of the mail a failure DSN returns (RET: `full`, `hdrs`) and the
    # client's id of this transmission (ENVID), the DSN's Original-Envelope-Id.
    dsn_ret: str | None = None
    envid: str | None = None
    # A mail recorded and never sent (`automatic`): the numbers it was addressed to (E.164, space
    # separated), by which `smsgw phone forget` finds its record when no notice names them.
    numbers: str | None = None


@dataclass(frozen=True, slots=True)
class AcceptResult:
    email_id: int | None
    message_ids: list[int]
    duplicates: int = 0  # recipients skipped because the same mail was accepted before
    refused: str | None = None  # SMTP reply of the policy check that refused the mail


@dataclass(frozen=True, slots=True)
class ClaimedPart:
    id: int
    message_id: int
    seq: int
    attempts: int
    destination: str
    source: str
    data_coding: int
    payload: bytes
    udh: bytes
    text: str
    expires_at: float
    via: str | None = None  # `NewMessage.via`
    # Its stored note says an earlier submit may have reached an SMSC (unanswered, cut off by a lost
    # connection or a crash): its next send is a possible duplicate, also in a process that did
    # not see that submit (`gateway.late_answers`).
    maybe_sent: bool = False


@dataclass(slots=True)
class Finished:
    """A message that reached a final state; the caller tells the sender."""

    message_id: int
    state: str
    reason: str | None
    account_id: int | None  # whose settings decide whether the sender is told (None: no account)
    quiet: bool = False  # a confirmation too late to be news: not mailed (`QueueRepo.expire_batch`)
    # The message's RFC 3461 NOTIFY (`NewMessage.notify`) where the settling read it: a delivery it
    # asks for is mailed whatever the account says, without a read of the message.
    notify: str | None = None
    # Delivered after its failure was told: a copy the SMSC accepted late reached the phone
    # (`gateway.store.latecopies`); whoever heard of the failure hears of this.
    after_failure: bool = False
