"""A bounce of a phone's answer mail that the relay took (250) and the recipient's server refused
later: matched to its answer mail by the Message-ID it returns, and handled as a 5xx at the session.

Without it the bounce came back to the answer mail's envelope sender and went to the fallback address
as any bounce ("it was not sent as SMS"), naming neither the answer, its phone nor its user, while the
answer stayed `mailed` in `smsgw mo list` and the panel, and its copy never went. Now the answer mail
ends `failed` with the bounce's reason, its kind's refusal handler (`gateway.store.outbox.on_refused`)
sends the copy and writes the MO's note in the same write as the bounce's record, once however many
bounces come, and the forward of the bounce says whose answer it returns.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32
from typing import NamedTuple

from gateway.forwarded import REPLY_ID_MARK
from gateway.relayaddresses import normal
from gateway.store.db import Store
from gateway.store.outbox import refused_kinds
from gateway.wording import Language, Phrase

# Answer mails looked for: sent (or failed already, so that a second bounce names its answer too)
# within this many days. A relay's queue keeps a mail 5 days at most (Postfix maximal_queue_lifetime).
LOOK_BACK_DAYS = 10
_IDS = 5  # the returned mail's ids looked up, at most: a bounce quotes one mail
_MSGID = re.compile(rb"^message-id:[ \t]*\r?\n?[ \t]*(<[^<>\s]{3,250}>)", re.IGNORECASE | re.MULTILINE)
_BLOCKS = 100  # a DSN's recipients read, at most
_DSN_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})
_DSN_BYTES = 64 * 1024  # of a DSN part left as text, read at most
_BLANK = re.compile(r"\r?\n[ \t]*\r?\n")
# A delay warning without a DSN part, in plain text (Exim's "Warning: message … delayed 24 hours …
# has not yet been delivered … Delivery attempts will continue", sendmail's and Postfix's "THIS IS A
# WARNING MESSAGE ONLY"), read in its subject and its own words before the quoted mail; words of a
# failure there make it a bounce whatever else it says.
_DELAY_WORDS = re.compile(
    r"\bdelayed\b|not yet been delivered|will continue to try|delivery attempts will continue"
    r"|still being retried|will (?:keep trying|retry)|warning (?:message )?only|\(delay\)",
    re.IGNORECASE,
)
_FAILURE_WORDS = re.compile(
    r"could ?n[o']t be delivered|permanent|undeliverable|delivery (?:has )?failed|failed permanently"
    r"|gave up|giving up|returning message|retry time ?out",
    re.IGNORECASE,
)
# A delay warning's own words name the failure it is not: Gmail's "You'll be notified if the delivery
# fails permanently", Postfix's "Your message could not be delivered for more than 4 hour(s)", and
# with them read as failure words each warning failed the answer, though the relay delivered it later.
# So a condition ("if …", to the sentence's end) and a time not delivered are no failure.
_NOT_FAILURE = re.compile(
    r"\bif\b[^.\n]*|could ?n[o']t be delivered for (?:more than|over|the (?:past|last))", re.IGNORECASE
)
# A Subject that names a delay decides whatever the words say: Gmail's "Delivery Status Notification
# (Delay)", Postfix's "Delayed Mail (still being retried)", Exchange's "Delivery delayed:", Exim's
# "Warning: message … delayed 24 hours", sendmail's "Warning: could not send message for past 4 hours".
# A failure's never does ("… (Failure)", "Undelivered Mail Returned to Sender", "Mail delivery failed").
_DELAY_SUBJECT = re.compile(
    r"\(delay\)|^\s*delayed mail\b|^\s*delivery delayed\b"
    r"|^\s*warning:.*(?:\bdelayed\b|could not send message for past|not yet been delivered)",
    re.IGNORECASE,
)
# Where a plain-text bounce's own words end and its copy of the mail begins.
_QUOTE_STARTS = re.compile(r"^(?:-{3,}|received:|return-path:|message-id:|from:|subject:)", re.I | re.M)

ANSWER_INTRO = Phrase(
    "A bounce of the mail with the answer from {phone} to {user} (MO {mo}) reached the SMS gateway: the"
    " mail relay took that mail, the recipient's server returned it ({why}). {done} {said}",
    "Bramka SMS otrzymała zwrot wiadomości z odpowiedzią z numeru {phone} do {user} (MO {mo}): serwer"
    " pocztowy przyjął tę wiadomość, serwer odbiorcy ją zwrócił ({why}). {done} {said}",
)
COPY_NOW = Phrase(
    "The answer is sent to the fallback address instead, as for a mail the relay refuses.",
    "Odpowiedź wysłano zamiast tego na adres zapasowy, jak dla wiadomości odrzuconej przez serwer.",
)
# A delay warning (RFC 3464 Action: delayed: sendmail's queuewarn, Postfix's delay_warning_time,
# Exchange's) is no bounce: the relay still holds the answer mail and keeps trying to deliver it.
ANSWER_DELAYED = Phrase(
    "A delay warning of the mail with the answer from {phone} to {user} (MO {mo}) reached the SMS"
    " gateway: the mail relay still holds that mail and keeps trying to deliver it ({why}). The answer"
    " stays sent and no copy goes; a bounce will follow if it is never delivered. {said}",
    "Bramka SMS otrzymała ostrzeżenie o opóźnieniu wiadomości z odpowiedzią z numeru {phone} do {user}"
    " (MO {mo}): serwer pocztowy wciąż ma tę wiadomość i ponawia próby doręczenia ({why}). Odpowiedź"
    " pozostaje wysłana, kopii nie wysłano; jeśli nie zostanie doręczona, przyjdzie zwrot. {said}",
)
COPY_BEFORE = Phrase(
    "The answer was handled at its first bounce or refusal: no second copy is sent.",
    "Odpowiedź obsłużono przy pierwszym zwrocie lub odrzuceniu: druga kopia nie jest wysyłana.",
)
NO_COPY = Phrase(
    "No copy is sent: no fallback address was set when the answer was mailed.",
    "Kopii nie wysłano: gdy wysyłano odpowiedź, nie był ustawiony adres zapasowy.",
)


class BouncedAnswer(NamedTuple):
    mail_id: int  # the answer mail in the outbox
    mo: int
    user: str  # the answer mail's recipient
    phone: str  # masked
    why: str
    first: bool  # not handled before: this bounce fails the mail (`OutboxRepo.bounced_later` settles it)
    # The mail names where its copy goes: a fallback address set when it was mailed (its row keeps
    # it). One mailed before `[replies] fallback_address` was set gets no copy, whatever is set now.
    copy: bool
    # Only a delay warning of the mail's recipient (no failure): the answer stays `sent`, no copy.
    delayed: bool = False


def find(
    store: Store,
    raw: bytes,
    *,
    client_ip: str | None = None,
    relay_ips: Collection[str] = (),
    mail_from: str = "",
    by_user: bool = False,
) -> BouncedAnswer | None:
    """The gateway's answer mail a bounce returns, by the Message-ID of the mail it quotes: through the
    index of the answer mails' own ids (`outbox.header_message_id`, `gateway.store.outboxmailid`), so
    that a bounce quoting any id, forged or not, costs a lookup an id and never a read of the mails.

    `client_ip` is where the bounce came from and `relay_ips` the addresses of the `[mail] relay` the
    answer mails went out through, as written or resolved from its name (`relayaddresses`): a bounce
    is taken as the answer's only from one of them or the answer's company (`_from_its_side`),
    whether its DSN names the answer's recipient or none.

    `mail_from` is the envelope sender and `by_user` whether the mail came from a user (logged in on
    the submission port, or a user's address on the relay port): a real bounce comes with the null
    sender (RFC 5321 4.5.5) from a mail system, never from a user. A "DSN" a user submits is read as
    any other report, and fails no answer."""
    if mail_from or by_user:
        return None
    msg = BytesParser(policy=compat32).parsebytes(raw, headersonly=False)
    own = str(msg.get("message-id", "")).strip()
    ids = [i.decode("ascii", "replace") for i in _MSGID.findall(raw)]
    mark = f".{REPLY_ID_MARK}@"  # only ids an answer mail can have (`<….sms-reply@host>`)
    ids = list(dict.fromkeys(i for i in ids if i != own and mark in i))[:_IDS]
    kinds = refused_kinds()
    if not ids or not kinds:
        return None
    since = store.clock() - LOOK_BACK_DAYS * 86400
    rows: list[tuple[int, str, int, int, int]] = []
    for mail_id in ids:  # one index lookup an id (an IN list of them had SQLite scan by age instead)
        rows += store.outbox.conn.execute(
            "SELECT id, rcpt, mo_ref, state = 'sent' AND refused_at IS NULL, fallback IS NOT NULL"
            " FROM outbox INDEXED BY outbox_header_message_id WHERE header_message_id = ?"
            " AND state IN ('sent', 'failed') AND created_at >= ? AND mo_ref IS NOT NULL"
            f" AND kind IN ({','.join('?' * len(kinds))}) ORDER BY id DESC LIMIT {_IDS}",
            (mail_id, since, *kinds),
        ).fetchall()
    named = recipients(msg)
    said = {rcpt: outcome(msg, rcpt) for rcpt in {r[1] for r in rows}}

    # A DSN that names its recipients returns the answer mail only if it names the mail's: one
    # quoting another user's answer (forwarded to an address that bounced, or forged) is not its
    # bounce, and went on as any bounce instead of failing that user's answer and sending its copy.
    # Any bounce could come from any company's mail server, and needs only the answer's id and its
    # recipient (both in any forwarded copy of the answer): from another company's network it failed
    # the answer, sent its copy and billed it failed. So it is taken only from the answer's side,
    # named recipient or not.
    # A DSN speaks of each recipient apart: only the answer's own recipient's Action says what became
    # of it. A relay's delay warning (Action: delayed, 4.x.x) failed the answer, sent a "Not
    # delivered" copy and billed it failed, while the relay went on and delivered it.
    def returns(r: tuple[int, str, int, int, int]) -> bool:
        if (named and _address(r[1]) not in named) or said[r[1]] is None:
            return False
        return _from_its_side(store, r[2], r[1], client_ip, relay_ips)

    row = next((r for r in rows if returns(r)), None)
    if row is None:
        return None
    source = store.outbox.conn.execute("SELECT source FROM mo WHERE id = ?", (row[2],)).fetchone()
    action, why = said[row[1]] or ("failed", "")
    phone = masked(source[0] if source else "")
    return BouncedAnswer(
        row[0], row[2], row[1], phone, why, bool(row[3]), bool(row[4]), delayed=action == "delayed"
    )


def _from_its_side(
    store: Store, mo: int, user: str, client_ip: str | None, relay_ips: Collection[str]
) -> bool:
    """Whether a bounce from `client_ip` may speak for the answer of MO `mo` to `user`: it came from a
    network of the account the answer belongs to (the MO's, or its user's), or from the mail relay the
    answer went out through (a recipient's server returns the bounce to the gateway's address, by way
    of its relay): `relay_ips`, its address as written or those its name resolved to."""
    if client_ip is None:
        return False
    if relay_ips and normal(client_ip) in relay_ips:
        return True
    owners = store.accounts.relay_owners(client_ip)
    if not owners:
        return False
    row = store.outbox.conn.execute("SELECT account_id FROM mo WHERE id = ?", (mo,)).fetchone()
    found = store.accounts.find_user(user)
    return (row is not None and row[0] in owners) or (found is not None and found.account_id in owners)


def masked(phone: str) -> str:
    """A phone as the forward names it: its country code and last three digits."""
    return phone if len(phone) < 8 else f"{phone[:3]}{'*' * (len(phone) - 6)}{phone[-3:]}"


def intro(answer: BouncedAnswer, said: str, lang: Language) -> str:
    """The forward's first words. What they say of the copy must be what the bounce's write did:
    bounces of one answer sent at once each found it not handled yet, and all but one forward said
    the copy went because of it. So a forward that may be the first is also written as one handled
    before (`first=False`), and the write keeps the one that says what it did (`gateway.smtp.accept`).
    Only an answer whose mail names a copy is said handled before: of one with no fallback address,
    "no second copy" spoke of a first copy that never went."""
    if answer.delayed:
        return ANSWER_DELAYED(
            lang, phone=answer.phone, user=answer.user, mo=answer.mo, why=answer.why, said=said
        )
    done = ((COPY_NOW if answer.first else COPY_BEFORE) if answer.copy else NO_COPY)(lang)
    return ANSWER_INTRO(
        lang, phone=answer.phone, user=answer.user, mo=answer.mo, why=answer.why, done=done, said=said
    )


def outcome(msg: Message, rcpt: str) -> tuple[str, str] | None:
    """What the bounce says became of the mail to `rcpt`, and why in its own words (the Status and
    Diagnostic-Code, RFC 3464): "failed" (an Action of failed, or a 5.x.x Status with no Action),
    else "delayed" (an Action of delayed, or a 4.x.x Status with no Action); None when it tells of
    no trouble with it (delivered, relayed, expanded). Its blocks that name `rcpt`, or every block
    where none names any recipient; a bounce without a DSN (a plain-text one) fails it, with its
    subject for the reason, unless its subject names a delay (`_DELAY_SUBJECT`) or its own words tell
    of a delay and of no failure (`_DELAY_WORDS`): "Warning: message … delayed 24 hours" failed an
    answer its relay went on to deliver."""
    blocks = list(_dsn_blocks(msg))
    own = [b for b in blocks if _address(rcpt) in _named(b)]
    if not any(_named(b) for b in blocks):
        own = blocks
    found: dict[str, str] = {}
    for block in own:
        action = (_field(block, "action").split() or [""])[0].lower()
        status = _field(block, "status").strip()
        kind = action or {"5": "failed", "4": "delayed"}.get(status[:1], "")
        if kind in ("failed", "delayed") and kind not in found:
            words = " ".join(w for w in (status, _field(block, "diagnostic-code").strip()) if w)
            found[kind] = " ".join(words.split())[:300] or "no reason given"
    for kind in ("failed", "delayed"):
        if kind in found:
            return kind, found[kind]
    if any(_field(b, "action").strip() or _field(b, "status").strip() for b in own):
        return None  # its blocks tell of no trouble
    subject = _subject(msg)
    reason = " ".join(subject.split())[:300] or "no reason given"
    if _DELAY_SUBJECT.search(subject):
        return "delayed", reason
    words = f"{subject}\n{_own_words(msg)}"
    if _DELAY_WORDS.search(words) and not _FAILURE_WORDS.search(_NOT_FAILURE.sub(" ", words)):
        return "delayed", reason
    return "failed", reason


def _own_words(msg: Message) -> str:
    """The opening of a plain-text bounce's first text part, up to where its copy of the mail begins."""
    part = next((p for p in msg.walk() if p.get_content_type() == "text/plain"), None)
    payload = part.get_payload(decode=True) if part is not None else None
    if not isinstance(payload, bytes):
        return ""
    text = payload[:4000].decode("utf-8", "replace")
    end = _QUOTE_STARTS.search(text)
    return text[: end.start()] if end else text


def _field(block: Message, name: str) -> str:
    """A field's first value as its sender wrote it, UTF-8 read as UTF-8 (RFC 6533's
    global-delivery-status, an SMTPUTF8 server's Diagnostic-Code). The bytes parser keeps 8-bit
    bytes as surrogates, and compat32's `get` made them "unknown-8bit" (each byte a U+FFFD): a Polish
    server's "Skrzynka użytkownika pełna" reached the answer's note, `mo list`, the panel and the
    bill as "Skrzynka u��ytkownika pe��na"."""
    raw = next((str(v) for k, v in block.raw_items() if k.lower() == name), "")
    return raw.encode("ascii", "surrogateescape").decode("utf-8", "replace")


def _subject(msg: Message) -> str:
    """The bounce's Subject, its encoded words (RFC 2047) decoded, raw UTF-8 read as UTF-8."""
    from email.header import decode_header, make_header

    raw = _field(msg, "subject")
    try:
        return str(make_header(decode_header(raw)))
    except (ValueError, LookupError):  # an unknown charset, a broken encoded word: as written
        return raw


def recipients(msg: Message) -> frozenset[str]:
    """The addresses the bounce's DSN names (Final-Recipient, Original-Recipient of type rfc822 or
    utf-8, RFC 3464 2.3.1-2, RFC 6533), lower case: empty if it has none, or no DSN."""
    return frozenset(a for block in _dsn_blocks(msg) for a in _named(block))


def _named(block: Message) -> set[str]:
    """The addresses one field block of a DSN names, lower case."""
    named: set[str] = set()
    for field in ("final-recipient", "original-recipient"):
        values = [str(v) for k, v in block.raw_items() if k.lower() == field][:_IDS]
        for value in (v.encode("ascii", "surrogateescape").decode("utf-8", "replace") for v in values):
            kind, _, address = value.partition(";")
            if kind.strip().lower() in ("rfc822", "utf-8") and address.strip():
                named.add(_address(address))
    return named


def _address(value: str) -> str:
    return value.strip().strip("<>").strip().lower()


def _dsn_blocks(msg: Message) -> Iterator[Message]:
    """The field blocks of the bounce's own DSN parts (not of a mail it quotes), the per-message one
    first (it names no recipient)."""
    stack, seen = [msg], 0
    while stack and seen < 200:  # a hostile mail may nest thousands of parts
        part, seen = stack.pop(), seen + 1
        payload = part.get_payload()
        if part.get_content_type() == "message/delivery-status" and isinstance(payload, list):
            yield from (block for block in payload[:_BLOCKS] if isinstance(block, Message))
        elif part.get_content_type() in _DSN_PARTS:
            yield from _blocks_of(part)
        elif part.get_content_maintype() == "multipart" and isinstance(payload, list):
            stack.extend(reversed(payload))


def _blocks_of(part: Message) -> Iterator[Message]:
    """The field blocks of RFC 6533's message/global-delivery-status (the DSN of an SMTPUTF8
    server): compat32 splits only message/delivery-status into its blocks, and parsed this one as a
    mail, the per-message block its header and every recipient's block its body, whose reason and
    recipients were never read."""
    payload = part.get_payload()
    first = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(first, Message):
        yield first
        data = first.get_payload(decode=True)
    else:
        data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return
    text = data[:_DSN_BYTES].decode("ascii", "surrogateescape")
    for chunk in _BLANK.split(text)[: _BLOCKS - 1]:
        if chunk.strip():
            yield HeaderParser(policy=compat32).parsestr(chunk.strip("\r\n") + "\n")
