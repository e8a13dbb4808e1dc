"""Why a service's address has not confirmed (R-4.3), for `premium list`, `premium verify`, the panel
and the dashboard; read only.

"Has not confirmed" reads as the client's delay. When the relay refused the confirmation mail (a
typo in `--email`: 550 User unknown) or its token expired, nobody will ever confirm: the public's
paid SMS stay kept until the operator acts, so the words say which it is and what to do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from gateway.premium.repo import Service
from gateway.store.forwardsteps import past, window_end, window_start
from gateway.store.outbox import relay_reply

# An unconfirmed service holding paid SMS longer than this needs the operator (the dashboard).
STALE_SECONDS = 86400.0


# A token's lifetime (`premium.verification_days`) counts the time that passed since it was made: a
# step forward of the clock within it is none (`gateway.store.forwardsteps`), as for the reply windows.
# As a fixed deadline, a step of 8 days (NTP setting right a clock that was behind) expired a link
# mailed a minute before it, and the client's "yes" was refused. A token replaced by a newer one has
# none left (`PremiumRepo.new_verification`), whatever steps came.


def token_expired(conn: sqlite3.Connection, created_at: float, expires_at: float, now: float) -> bool:
    """Whether a confirmation token made at `created_at`, good until `expires_at` by the clock then,
    has run out at `now`."""
    return expires_at <= created_at or past(conn, created_at, now, expires_at - created_at)


def token_end(conn: sqlite3.Connection, created_at: float, expires_at: float) -> float:
    """When that token runs out, as `token_expired` reads it: later by the steps forward made since."""
    if expires_at <= created_at:
        return expires_at
    return window_end(conn, created_at, expires_at - created_at)


@dataclass(frozen=True, slots=True)
class Unconfirmed:
    password: str
    email: str
    kept: int
    refused: str | None  # the relay's words for the confirmation mail it refused for good
    expired_at: float | None  # the confirmation's token ran out unanswered

    def why(self, shown: Callable[[float], str]) -> str:
        """What keeps the service unconfirmed; `shown` writes a time as the caller shows times."""
        if self.refused is not None:
            return f"the confirmation mail to {self.email} was refused by the mail relay ({self.refused})"
        if self.expired_at is not None:
            return f"the confirmation mailed to {self.email} expired unanswered {shown(self.expired_at)}"
        return f"{self.email} has not confirmed"

    def todo(self, operator: bool = True, quote: str = "`") -> str:
        """What the operator does about it (a company admin asks the operator); `quote` marks the
        commands (none on the panel, which shows the words as text)."""
        resend = f"{quote}smsgw premium verify {self.password} --resend{quote}"
        other = f"{quote}smsgw premium set {self.password} --email ADDRESS{quote}"
        if not operator:
            if self.refused is not None or self.expired_at is not None:
                return "the gateway's operator can correct the address or mail a new confirmation"
            return "the gateway's operator can mail a new one"
        if self.refused is not None:
            return f"correct the address with {other} (a new confirmation goes), or {resend} to try it again"
        if self.expired_at is not None:
            return f"{resend} mails a new one, or {other} for another address"
        return f"{resend} mails a new confirmation (the earlier ones then stop working)"


def unconfirmed(conn: sqlite3.Connection, service: Service, kept: int, now: float) -> Unconfirmed:
    """The state of the service's last confirmation: refused by the relay (its failed outbox mail,
    found by index `outbox_failed`, after the confirmation was made), expired, or waiting."""
    last = conn.execute(
        "SELECT token, email, created_at, expires_at FROM premium_verifications WHERE service_id = ?"
        " AND used_at IS NULL ORDER BY created_at DESC LIMIT 1",
        (service.id,),
    ).fetchone()
    refused = expired = None
    if last is not None:
        token, email, created_at, expires_at = last
        # This confirmation's own mail: its Reply-To names the token. By address and time alone,
        # another service's confirmation to the same address (or an earlier one of this service
        # refused after a --resend) was read as this one's.
        failed = conn.execute(
            "SELECT last_error FROM outbox WHERE state = 'failed' AND sent_at >= ?"
            " AND kind = 'premium-verify' AND rcpt = ? AND instr(content, ?) > 0"
            " ORDER BY sent_at DESC LIMIT 1",
            (created_at, email, token.encode()),
        ).fetchone()
        if failed is not None:
            refused = relay_reply(failed[0] or "")[1]
        elif token_expired(conn, created_at, expires_at, now):
            expired = token_end(conn, created_at, expires_at)
    return Unconfirmed(service.password, service.email, kept, refused, expired)


def stale(conn: sqlite3.Connection, account_id: int | None, now: float) -> list[tuple[Unconfirmed, float]]:
    """Live unconfirmed services holding paid SMS for more than a day, with their oldest one's time:
    the phones paid and the client earns nothing until someone acts. Off index premium_mo_awaiting."""
    scope, args = ("", ()) if account_id is None else (" AND s.account_id = ?", (account_id,))
    rows = conn.execute(
        "SELECT s.id, s.password, s.account_id, s.email, s.numbers, s.verified_at, s.created_at,"
        " s.removed_at, COUNT(*), MIN(p.received_at) FROM premium_services s"
        " JOIN premium_mo p ON p.service_id = s.id AND p.state = 'awaiting'"
        f" WHERE s.removed_at IS NULL AND s.verified_at IS NULL{scope}"
        " GROUP BY s.id HAVING MIN(p.received_at) < ? ORDER BY MIN(p.received_at)",
        # A step forward of the clock within the day is no time passed (`forwardsteps`).
        (*args, window_start(conn, now, STALE_SECONDS)),
    ).fetchall()
    return [(unconfirmed(conn, Service(*r[:8]), r[8], now), r[9]) for r in rows]


def attention(
    conn: sqlite3.Connection,
    account_id: int | None,
    now: float,
    shown: Callable[[float], str],
    operator: bool,
) -> list[tuple[str, str]]:
    """The dashboard's lines for `stale` services: (password, what to read), times written by `shown`."""
    return [
        (
            u.password,
            f"Premium service {u.password}: {u.kept} paid SMS kept since {shown(since)}, unconfirmed:"
            f" {u.why(shown)}; {u.todo(operator, quote='')}.",
        )
        for u, since in stale(conn, account_id, now)
    ]
