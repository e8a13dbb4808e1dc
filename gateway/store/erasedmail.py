"""An outbox mail erased whole at the phone's request (`smsgw phone forget`, `gateway.privacy`), as the
outbox's own verbs see it: the marker its content is replaced by, and the retry's refusal of it.

Kept in the store, by the retry that must refuse such a mail (`OutboxAdmin.retry_outbox`), as the SMS
text's marker is (`retrystart.ERASED`): the feature reads them from here, and the store imports no
feature.
"""

from __future__ import annotations

import sqlite3

import structlog

from gateway.store.retrystart import ERASED

# Why a mail about the phone is not sent once its text is erased, as `outbox list` and the retry say it.
ERASED_WHY = "its text was erased at the phone's request"
# An outbox mail erased whole holds this and nothing else: no From, Subject, Date or Message-ID. Sent,
# its recipient got a mail of that one line (the outbox worker and `smsgw outbox retry` refuse it).
ERASED_MAIL = ERASED.encode()


class MailErased(ValueError):
    """`smsgw outbox retry ID` of a mail erased at the phone's request: refused, saying why (exit 1)."""


def refuse_erased(conn: sqlite3.Connection, mail_id: int | None) -> int:
    """The mails erased whole a retry leaves: `MailErased` for the one named, else how many of all
    are left out (said in a warning, which the CLI shows). Sent again, each went as the marker's
    one line without a header, to the staff member or the client the phone's text was for."""
    if mail_id is not None:
        row = conn.execute(
            "SELECT 1 FROM outbox WHERE id = ? AND state IN ('queued', 'failed') AND content = ?",
            (mail_id, ERASED_MAIL),
        ).fetchone()
        if row is not None:
            raise MailErased(f"mail {mail_id} is not sent again: {ERASED_WHY}")
        return 0
    (skipped,) = conn.execute(
        "SELECT COUNT(*) FROM outbox WHERE state IN ('queued', 'failed') AND content = ?", (ERASED_MAIL,)
    ).fetchone()
    if skipped:
        structlog.get_logger(__name__).warning(
            "outbox.retry_skipped", erased=skipped, note=f"{skipped} mail(s) not sent again: {ERASED_WHY}"
        )
    return int(skipped)
