"""The answers clients mail to premium SMS (R-4.5): recorded sent or refused, how many of an SMS's free
answers are used, and the listing `smsgw premium answers` reads, off indexes of their own."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.premium.correctionsrepo import CorrectionsRepo

# The free answers a premium SMS ({} names it) has used: those sent, less those no SMSC took.
USED_ANSWERS = (
    "SELECT COUNT(*) FROM premium_answers a LEFT JOIN messages m ON m.id = a.message_id"
    " WHERE a.premium_mo_id = {} AND a.state = 'sent' AND NOT COALESCE("
    " m.state IN ('failed', 'expired', 'cancelled') AND NOT EXISTS"
    " (SELECT 1 FROM parts p WHERE p.message_id = m.id AND p.smsc_id IS NOT NULL), 0)"
)


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """One answer mail to a premium SMS, as `smsgw premium answers` lists it."""

    created_at: float
    password: str | None
    account: str  # of the premium SMS answered ("-" for one no service kept); a password re-added
    # for another account lists both accounts' answers
    number: str
    sender: str  # the envelope sender without a BATV tag (the From address of an auto-reply from <>)
    phone: str
    state: str  # sent | refused
    reason: str | None  # why refused; for one sent, what became of its SMS


class AnswersRepo(CorrectionsRepo):
    """The premium repository's answers (gateway.premium.repo.PremiumRepo builds on it)."""

    # ---- answers -------------------------------------------------------------------------------

    def record_answer(
        self,
        pmo_id: int,
        mail_from: str,
        header_message_id: str | None,
        state: str,
        reason: str | None = None,
        message_id: int | None = None,
        text: str | None = None,
        cut: bool = False,
        envelope: str | None = None,
    ) -> None:
        """`mail_from`: who answered (without a BATV tag); `envelope`: the envelope sender as received
        when it differs (tagged), where a report of the answer's SMS goes. The row names the premium
        SMS's password, which `answers_list` reads a service's answers by."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO premium_answers (premium_mo_id, mail_from, header_message_id, state, reason,"
                " message_id, text, cut, created_at, envelope, password)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,(SELECT password FROM premium_mo WHERE id = ?))",
                (
                    pmo_id,
                    mail_from,
                    header_message_id,
                    state,
                    reason,
                    message_id,
                    text,
                    int(cut),
                    self.clock(),
                    envelope,
                    pmo_id,
                ),
            )
            if state == "sent":
                self.conn.execute("UPDATE premium_mo SET answers = answers + 1 WHERE id = ?", (pmo_id,))

    def answers_used(self, pmo_id: int) -> int:
        """The free answers this premium SMS has used: those sent, less those no SMSC took (refused
        at submit, or never sent before they expired). Each refused one used one up, and a client
        whose answer an SMSC refused could not answer the phone again."""
        row = self.conn.execute(USED_ANSWERS.format("?"), (pmo_id,)).fetchone()
        return int(row[0])

    def answered_before(self, pmo_id: int, header_message_id: str) -> bool:
        """The same answer mail was taken already (the client's server sent it again)."""
        return (
            self.conn.execute(
                "SELECT 1 FROM premium_answers WHERE premium_mo_id = ? AND header_message_id = ?"
                " AND state = 'sent'",
                (pmo_id, header_message_id),
            ).fetchone()
            is not None
        )

    def answers_list(
        self, password: str | None, since: float | None, refused_only: bool, limit: int
    ) -> list[AnswerRow]:
        """The answers taken or refused, newest first, read off an index in that order so that the
        listing stops at `limit`: all of them off premium_answers_created; those to the SMS of
        services with `password` (removed ones too, of whichever account) off premium_answers_password,
        which holds that password's alone however many other services' answers there are."""
        index, where, args = "premium_answers_created", ["a.created_at >= ?"], [since or 0.0]
        if password is not None:
            index = "premium_answers_password"
            where.insert(0, "a.password = ?")
            args.insert(0, password)
        if refused_only:
            where.append("a.state = 'refused'")
        rows = self.conn.execute(
            "SELECT a.created_at, a.password, COALESCE(acc.name, '-'), p.number, a.mail_from, p.phone,"
            " a.state, COALESCE(a.reason, CASE WHEN m.id IS NULL THEN NULL ELSE 'SMS ' || m.state END)"
            f" FROM premium_answers a INDEXED BY {index}"
            " JOIN premium_mo p ON p.id = a.premium_mo_id LEFT JOIN messages m ON m.id = a.message_id"
            " LEFT JOIN accounts acc ON acc.id = COALESCE(m.account_id, p.account_id)"
            f" WHERE {' AND '.join(where)} ORDER BY a.created_at DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [AnswerRow(*r) for r in rows]
