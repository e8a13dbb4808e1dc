"""An admin's retry of a message (`AdminRepo.retry_message`): whether its text is still there to send, and
when it may go.

A retry is not a way around quiet hours (SPEC R-2.4, the operators' anti-spam terms): a bulk SMS held for
them, then held by an admin and retried (README: *Retry* releases a *Hold*), went to the SMSC at once,
at night. It goes when a bulk SMS written now would, by the account's quiet hours as they are now, on
the gateway's wall clock: the rule of acceptance (`gateway.smtp.compose`) and of a changed window
(`AccountsRepo._release_held`).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from acl.quiet import release_time
from gateway.store.retryrules import SHORTER, MailExpired

# What an erased text, and the phone's number in a mail that keeps the rest, are replaced by
# (`smsgw phone forget`, `gateway.privacy`). Kept here, by the retry that must refuse a text so
# marked, so that the feature reads it from the store and the store imports no feature.
ERASED = "[erased at the phone's request]"


def retry_start(conn: sqlite3.Connection, message_id: int, now: float, zone: tzinfo | None) -> float:
    """When the retried message's parts are due: `now`, or the end of the quiet window now is in, for a
    bulk message (its mail said `Precedence: bulk`, or its account sends only bulk) of an account with
    quiet hours. `zone` None is the machine's own (a store opened without a config)."""
    row = conn.execute(
        "SELECT m.bulk, a.bulk, a.quiet_start, a.quiet_end FROM messages m"
        " JOIN accounts a ON a.id = m.account_id WHERE m.id = ?",
        (message_id,),
    ).fetchone()
    if row is None or not (row[0] or row[1]):
        return now
    release = release_time(datetime.fromtimestamp(now, zone), row[2], row[3])
    return now if release is None else release.timestamp()


def text_erased(conn: sqlite3.Connection, message_id: int) -> bool:
    """Whether the message's text was erased (`gateway.privacy`): the marker in the SMS or a part. Such a
    message is never sent again. The erasure writes the marker into the SMS and every part in the write
    that empties their payloads, so the marker finds every one; an empty payload alone is no sign
    (acceptance refuses an empty text, and rows written by hand may have none)."""
    row = conn.execute(
        "SELECT 1 FROM messages m WHERE m.id = ? AND (m.text = ? OR EXISTS (SELECT 1 FROM parts p"
        " WHERE p.message_id = m.id AND p.text = ?))",
        (message_id, ERASED, ERASED),
    ).fetchone()
    return row is not None


class ExpiresBeforeRelease(MailExpired):
    """A retry of a message its mail's own expiry ends before quiet hours let it go: acceptance refuses
    such a mail (`gateway.smtp.mailexpiry.expired`), and a retry refuses it as one after that date, unless
    the admin insists. `release`: when it could go, epoch seconds."""

    def __init__(self, at: float, release: float) -> None:
        super().__init__(at)
        self.release = release

    def said(self, zone: str = "UTC") -> str:
        tz = ZoneInfo(zone)
        when, release = datetime.fromtimestamp(self.at, tz), datetime.fromtimestamp(self.release, tz)
        return (
            f"its validity ends at {when:%Y-%m-%d %H:%M %Z}, before the account's quiet hours let it go at"
            f" {release:%H:%M}, {SHORTER}"
        )
