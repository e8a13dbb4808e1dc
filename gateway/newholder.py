"""Mail about an SMS whose sender's address was given to someone else since: the report goes elsewhere.

A user removed while their SMS waited (an outage, quiet hours), and the address added again for a new
employee: the bounce reached the new holder, quoting the predecessor's SMS and its customer's number.
Apart from gateway/events.py, which decides who is told; this only moves such a mail and says why.
"""

from __future__ import annotations

from email import message_from_bytes
from email.policy import compat32
from typing import Any

import structlog

from gateway.config import Config
from gateway.conversations.holding import added_since
from gateway.store.db import Store

log = structlog.get_logger(__name__)

# How the line saying why a report came here begins: a report built again (an admin's retry took an
# SMS out of it, `gateway.bouncegroup.regroup`) reads it back from the report as it was (`said_before`).
WHY_START = "This report is about an SMS sent by "


def readdressed(
    store: Store, config: Config, info: dict[str, Any], mails: list[tuple[str, bool]]
) -> list[tuple[str, bool, str | None]]:
    """`mails`, the sender's own taken from an address given to someone else since the mail came.

    A user removed while their SMS waited (an outage, quiet hours), and the address added again
    for a new employee: the bounce reached the new holder, quoting the predecessor's SMS and its
    customer's number. Such a mail goes to the account's notify address, else to `[replies]
    fallback_address`, with a line saying why (`why`); with neither, it is not sent (logged)."""
    leaver = new_holder(store, info) if mails else None
    if leaver is None:
        return [(rcpt, dsn, None) for rcpt, dsn in mails]
    to = info["notify_address"] or config.replies.fallback_address
    out: list[tuple[str, bool, str | None]] = []
    for rcpt, dsn in mails:
        if rcpt.lower() not in leaver:
            out.append((rcpt, dsn, None))
            continue
        if not to or to.lower() in leaver or any(to.lower() == r.lower() for r, _, _ in out):
            log.warning("notify.not_sent", message=info["id"], state=info["state"], to=rcpt,
                        reason="the address was added again as a user after the mail came",
                        sent_to=to or None)  # fmt: skip
            continue
        account = f" of account {info['account']}" if info["account"] else ""
        why = (
            f"{WHY_START}{rcpt}{account}. That address was added again as a"
            " user after the mail came (someone else may hold it now), so the report comes here instead."
        )
        out.append((to, dsn, why))
        log.info("notify.readdressed", message=info["id"], state=info["state"], meant=rcpt, to=to)
    return out


def new_holder(store: Store, info: dict[str, Any]) -> set[str] | None:
    """The sender's addresses (as mailed, and as recorded), lowercased, when the user now holding
    that address was added after the mail came (`conversations.repo.gone`'s rule): None if not.

    The mail recorded under the user who holds the address now is theirs, whatever the times say:
    removing a user clears it from their mails (`user_id`), and adding one makes a new row. Only a
    mail of a user removed since goes by the times (`added_since`)."""
    row = store.db.conn.execute(
        "SELECT e.mail_from, e.received_at, u.created_at, e.user_id, u.id FROM messages m"
        " JOIN emails e ON e.id = m.email_id JOIN users u ON u.email = e.mail_from WHERE m.id = ?",
        (info["id"],),
    ).fetchone()
    if row is None or row[3] == row[4] or not added_since(row[2], row[1], store.clock()):
        return None
    return {str(row[0]).lower(), str(info["mail_from"] or "").lower()}


def said_first(content: bytes, line: str) -> bytes:
    """The mail with `line` put first in its first text/plain part (the words a person reads; a
    DSN's machine-read parts stay as they were), in the compat32 form its builders write."""
    msg = message_from_bytes(content, policy=compat32)
    part = next((p for p in msg.walk() if p.get_content_type() == "text/plain"), None)
    if part is None:
        return content
    raw = part.get_payload(decode=True)
    text = (
        raw.decode(part.get_content_charset() or "utf-8", errors="replace") if isinstance(raw, bytes) else ""
    )
    del part["Content-Transfer-Encoding"]
    part.set_payload(f"{line}\n\n{text}", "utf-8")
    return msg.as_bytes()


def said_before(content: bytes) -> str | None:
    """The line `said_first` put first in the report `content`, if it did."""
    msg = message_from_bytes(content, policy=compat32)
    part = next((p for p in msg.walk() if p.get_content_type() == "text/plain"), None)
    raw = None if part is None else part.get_payload(decode=True)
    if part is None or not isinstance(raw, bytes):
        return None
    text = raw.decode(part.get_content_charset() or "utf-8", errors="replace")
    return text.split("\n\n", 1)[0] if text.startswith(WHY_START) else None
