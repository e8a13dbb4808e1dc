"""Which deliveries are one mail (R-1.8) and the Message-ID a mail without one is given (R-3.5).

Its own module because both name a mail across deliveries and notices, apart from what the mail
says: a retry is told apart from a new mail by these alone.
"""

from __future__ import annotations

import hashlib
import re
from email.utils import make_msgid, mktime_tz, parsedate_tz

from gateway.config import Config
from gateway.smtp.relayqueueid import HEAD_SCAN, queue_identity, top_received
from gateway.store.accepting import RETRY_WINDOW_SECONDS, SHORT_KEY_MARK

# A Date: field at a line's start (a continuation line starts with white space), with its folds.
_DATE = re.compile(rb"(?im)^date:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)")
_MESSAGE_ID = re.compile(rb"(?im)^message-id:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)")
# A Message-ID as written is kept this long in a key: RFC 5322's line bound; the rest of a longer
# one adds nothing that tells a retry apart, and the key's pieces are hashed, not stored.
_RAW_ID_MAX = 998


def own_message_id(cfg: Config) -> str:
    """R-3.5: a mail that came without a Message-ID (scripts, printers, monitoring systems) is
    given one of ours, so that its confirmation, bounce and the phone's answers name the same id
    and thread with each other. Never used to tell retries apart: it is new on every delivery."""
    return make_msgid(idstring="in", domain=cfg.mail.from_address.rpartition("@")[2])[1:-1]


def written_at(raw: bytes) -> str:
    """The mail's Date: field as written, unfolded, its white space runs one space; "" without one.

    A retry is the same bytes (a mail server's from its queue, a mail program's from its outbox),
    so the same Date; a device that puts one fixed Message-ID on every mail writes each new mail's
    Date anew: its second "disk full" is another mail, not a retry of the first."""
    head = raw[:HEAD_SCAN]
    end = _header_end(head)
    # The field as most programs write it found by a plain search (every mail asks: the pattern,
    # case-blind at every line's start, took 4 us of the intake's), any other spelling by the pattern.
    if head.startswith(b"Date:"):
        found = _DATE.match(head, 0, end)
    elif (at := head.find(b"\nDate:", 0, end)) >= 0:
        found = _DATE.match(head, at + 1, end)
    elif b"date:" in head[:end].lower():
        found = _DATE.search(head, 0, end)
    else:
        return ""  # none (scripts, monitoring systems)
    return " ".join(found[1].decode("latin-1").split()) if found else ""


def _header_end(head: bytes) -> int:
    ends = [at for at in (head.find(b"\n\n"), head.find(b"\n\r\n")) if at >= 0]
    return min(ends) + 1 if ends else len(head)


def unwritable_id(raw: bytes) -> str:
    """The first Message-ID field as written, unfolded, its white space runs one space and bounded;
    "" without one. Asked only when the id cannot be written back (`mailheaders.msgid_token`: no
    "@", over 250 characters, a quoted local part), which threading drops: the duplicate key still
    names the mail by it, as the same bytes sent twice are one mail whatever their id looks like."""
    head = raw[:HEAD_SCAN]
    end = _header_end(head)
    # Most mail that asks has no Message-ID at all (scripts, devices): told by plain searches, the
    # field name's end in each case it may be written in, before the case-blind pattern is run.
    if all(head.find(spelt, 0, end) < 0 for spelt in (b"-ID:", b"-Id:", b"-id:", b"-iD:")):
        return ""
    found = _MESSAGE_ID.search(head, 0, end)
    return " ".join(found[1].decode("latin-1").split())[:_RAW_ID_MAX] if found else ""


def _no_clock(written: str, raw: bytes, now: float | None) -> bool:
    """Whether a Date: says nothing of when the mail was written: unreadable, or more than the retry
    window before the relay took it (its top Received: date; without a readable one, `now`). A device
    with no clock writes one fixed Date ("Thu, 01 Jan 1970 00:00:00 +0000") on every alert, which
    tells its alerts apart no better than none; a client's retry comes minutes after its Date."""
    parts = parsedate_tz(written)
    if parts is None:
        return True  # a wrong merge loses an SMS, where counting the queue entry risks one twice
    at = mktime_tz(parts)
    if now is not None and at >= now - RETRY_WINDOW_SECONDS:
        return False  # nearly every mail: decided without reading the Received: line (~20 us)
    taken = parsedate_tz((top_received(raw) or "").rpartition(";")[2].strip())
    reference = mktime_tz(taken) if taken is not None else now
    return reference is not None and at < reference - RETRY_WINDOW_SECONDS


def dedup_key(
    message_id: str | None, mail_from: str, text: str, raw: bytes = b"", now: float | None = None
) -> str | None:
    """R-1.8: what makes two deliveries the same mail: its Message-ID, or without one the queue
    entry the relaying server's top Received: line names (`relayqueueid`) with when that server took
    it (the line's date: a short Postfix queue id repeats, never within the same second); then its
    Date:, sender and text. A mail with neither has no key: every delivery of it is a new mail. The
    key is a retry's only within `gateway.store.accepting.RETRY_WINDOW_SECONDS` of its copy.

    The queue entry counts beside a Message-ID only when the mail's Date: tells nothing: none, or
    one no clock wrote (`_no_clock`; `now` stands in for a Received: date that cannot be read). A
    device (a UPS card, having no clock) may write one fixed Message-ID and no Date, or a fixed one,
    and each of its alerts was the first one's "duplicate", though its relay queued each as a mail of
    its own (the relay's retry keeps its own line). With a recent Date: the Message-ID and Date decide
    alone, because one mail may sit in two queue entries upstream: a mail client that resends to its
    own relay after a lost 250, or Exchange resubmitting its shadow copy, and that retry must still
    go once. The Date is read as a time only for mail with a Message-ID, before the Received: line.

    With neither a Date: that tells when the mail was written nor a queue entry (a device mailing
    the relay port straight), the Message-ID alone names the mail, and a fixed one names all its
    alerts: such a key is marked (`accepting.SHORT_KEY_MARK`) to be a retry's only within minutes,
    as a client's own retry after a lost 250 comes. A Message-ID threading cannot use (`message_id`
    None) counts as written (`unwritable_id`): a NUL before it, which no id holds, keeps it apart."""
    identity = message_id or ((raw_id := unwritable_id(raw)) and f"\0raw\0{raw_id}")
    written = written_at(raw)
    mark = ""
    if not identity or not written or _no_clock(written, raw, now):
        if (queued := queue_identity(raw)) is not None:
            taken = (top_received(raw) or "").rpartition(";")[2].strip()
            # NULs never occur in a Message-ID: no id can read as another's queue entry.
            identity += f"\0received\0{queued}\0{taken}"
        elif not identity:
            return None
        else:
            mark = SHORT_KEY_MARK  # nothing but the id: a retry within minutes, not an alert hours later
    digest = hashlib.sha256()
    for piece in (identity, written, mail_from, text):
        digest.update(piece.encode("utf-8", "surrogatepass") + b"\0")
    return mark + digest.hexdigest()
