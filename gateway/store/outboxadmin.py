"""The admin's verbs on the outbox (bounces, notices and replies waiting for the mail relay): send
failed or waiting mail again, and which failed mail most likely arrived. Apart from the SMS queue's
verbs in `gateway.store.admin`, whose repository takes them in."""

from __future__ import annotations

from typing import Any

from gateway.store.erasedmail import ERASED_MAIL, refuse_erased
from gateway.store.repository import Repository


class OutboxAdmin(Repository):
    def retry_outbox(self, mail_id: int | None = None) -> int:
        """Admin: send failed or waiting mail again now (all of it when `mail_id` is None).

        A failed mail starts its attempts afresh; one still waiting keeps its count. A mail that failed after
        sends the relay took without answering has most likely arrived: it keeps their count, so that its next
        send is logged as a possible duplicate and one more such send gives it up again, and it goes only when
        named (`outbox_most_likely_arrived`). An erased one, never (`refuse_erased`)."""
        sql = (
            "UPDATE outbox SET attempts = CASE WHEN state = 'failed' THEN 0 ELSE attempts END,"
            " state = 'queued', next_attempt_at = ? WHERE state IN ('queued', 'failed') AND content <> ?"
        )
        args: tuple[Any, ...] = (self.clock(), ERASED_MAIL)
        if mail_id is not None:
            sql += " AND id = ?"
            args += (mail_id,)
        else:
            sql += " AND NOT (state = 'failed' AND unanswered > 0)"
        with self.transaction():
            refuse_erased(self.conn, mail_id)
            return self.conn.execute(sql, args).rowcount

    def outbox_most_likely_arrived(self) -> list[int]:
        """The failed mails `retry_outbox` of all leaves: the relay took each whole without answering.
        Not an erased one: `outbox retry ID`, which the CLI then offers, refuses it."""
        sql = "SELECT id FROM outbox WHERE state = 'failed' AND unanswered > 0 AND content <> ? ORDER BY id"
        return [r[0] for r in self.conn.execute(sql, (ERASED_MAIL,))]
