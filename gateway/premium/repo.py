"""The premium repository: services, their reply ACLs and confirmation tokens, premium MOs, answers.

Every verb joins the caller's transaction: an MO's row, its money and its mail are written in the
write that stores the MO; an answer's row, its count and its SMS in the one that accepts it. Money
is integer grosze. Services are never deleted, only marked removed, so that the money records of
their past MOs keep naming them (billing reads `premium_mo`). The figures people read of them
(`premium stats`, the panel) are `gateway.premium.stats`; the corrections booked for an SMS of a
billed month, `gateway.premium.correctionsrepo`, which `PremiumRepo` includes.
"""

from __future__ import annotations

from typing import Any

from gateway.premium.answersrepo import USED_ANSWERS, AnswersRepo
from gateway.premium.queries import SERVICE_COLUMNS as _SERVICE
from gateway.premium.queries import live_services
from gateway.premium.rows import PremiumMo, Service, Verification
from gateway.store.mo import MoRepo

_PMO = (
    "id, mo_id, number, phone, service_id, account_id, password, parts, price, commission, text, state,"
    " note, token, answers, received_at, forwarded_at"
)
_PMO_F = ", ".join(f"f.{c.strip()}" for c in _PMO.split(","))  # the same columns of the joined row `f`


__all__ = ["PremiumMo", "PremiumRepo", "Service", "Verification"]


class PremiumRepo(AnswersRepo):
    # ---- services ----------------------------------------------------------------------------

    def add_service(
        self, password: str, account_id: int, email: str, numbers: list[str], acl: list[str]
    ) -> int:
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO premium_services (password, account_id, email, numbers, created_at)"
                " VALUES (?,?,?,?,?)",
                (password, account_id, email, " ".join(numbers), self.clock()),
            )
            assert cur.lastrowid is not None
            self.set_acl(cur.lastrowid, acl)
            return cur.lastrowid

    def service(self, service_id: int) -> Service:
        row = self.conn.execute(
            f"SELECT {_SERVICE} FROM premium_services WHERE id = ?", (service_id,)
        ).fetchone()
        return Service(*row)

    def active_service(self, password: str) -> Service | None:
        row = self.conn.execute(
            f"SELECT {_SERVICE} FROM premium_services WHERE password = ? AND removed_at IS NULL", (password,)
        ).fetchone()
        return Service(*row) if row else None

    def had_password(self, password: str) -> bool:
        """Whether a service has had `password`, a removed one too: its answers stay listed."""
        row = self.conn.execute("SELECT 1 FROM premium_services WHERE password = ? LIMIT 1", (password,))
        return row.fetchone() is not None

    def services(self) -> list[Service]:
        return live_services(self.conn)

    def update_service(self, service_id: int, **values: Any) -> None:
        allowed = {"account_id", "email", "numbers", "verified_at", "removed_at"}
        assert set(values) <= allowed, values
        sets = ", ".join(f"{k} = ?" for k in values)
        with self.transaction():
            self.conn.execute(
                f"UPDATE premium_services SET {sets} WHERE id = ?", (*values.values(), service_id)
            )

    def acl(self, service_id: int) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT address FROM premium_reply_acl WHERE service_id = ? ORDER BY address", (service_id,)
            )
        ]

    def set_acl(self, service_id: int, addresses: list[str]) -> None:
        with self.transaction():
            self.conn.execute("DELETE FROM premium_reply_acl WHERE service_id = ?", (service_id,))
            self.conn.executemany(
                "INSERT OR IGNORE INTO premium_reply_acl (service_id, address) VALUES (?, ?)",
                [(service_id, a) for a in addresses],
            )

    def acl_allows(self, service_id: int, address: str) -> bool:
        return (
            self.conn.execute(
                "SELECT 1 FROM premium_reply_acl WHERE service_id = ? AND address = ?", (service_id, address)
            ).fetchone()
            is not None
        )

    def keep_as_it_was(self, service: Service, acl: list[str]) -> None:
        """Before `premium set --account` moves a service: the service as the earlier account had it,
        ended now, with its reply list (`replylist`). Its votes stay that account's, and so do the
        addresses that answer them; a list the move or the new client changes is the new account's.

        A row of its own, removed, with the service's password, address, numbers and `created_at`
        (`as_it_was` finds it by them): as `premium remove` leaves one, no votes name it and no
        listing shows it. Only when the earlier account has votes of the service to answer: one kept
        for its address to confirm goes with the service (`gateway.premium.moves`)."""
        if not self.left_behind(service):
            return
        with self.transaction():
            cur = self.conn.execute(
                "INSERT INTO premium_services (password, account_id, email, numbers, verified_at,"
                " created_at, removed_at) VALUES (?,?,?,?,?,?,?)",
                (
                    service.password,
                    service.account_id,
                    service.email,
                    service.numbers,
                    service.verified_at,
                    service.created_at,
                    self.clock(),
                ),
            )
            assert cur.lastrowid is not None
            self.set_acl(cur.lastrowid, acl)

    def left_behind(self, service: Service) -> bool:
        """Whether a move of the service leaves votes behind with its account (`keep_as_it_was`): any
        not kept for its address to confirm, which go with the service (`gateway.premium.moves`)."""
        row = self.conn.execute(
            "SELECT 1 FROM premium_mo WHERE service_id = ? AND account_id = ? AND state != 'awaiting'"
            " LIMIT 1",
            (service.id, service.account_id),
        ).fetchone()
        return row is not None

    def as_it_was(self, service: Service, account_id: int, at: float) -> Service | None:
        """The service as account `account_id` had it at `at`, kept by `keep_as_it_was` when it moved
        away; None when no move since `at` kept one."""
        row = self.conn.execute(
            f"SELECT {_SERVICE} FROM premium_services WHERE password = ? AND account_id = ?"
            " AND created_at = ? AND id != ? AND removed_at >= ? ORDER BY removed_at LIMIT 1",
            (service.password, account_id, service.created_at, service.id, at),
        ).fetchone()
        return Service(*row) if row else None

    def mailed_to(self, mo_id: int) -> str | None:
        """The address a premium SMS's mail went to (its first), while the outbox keeps it."""
        row = self.conn.execute(
            "SELECT rcpt FROM outbox WHERE mo_ref = ? AND kind = 'premium' ORDER BY id LIMIT 1", (mo_id,)
        ).fetchone()
        return str(row[0]) if row else None

    # ---- verification --------------------------------------------------------------------------

    def new_verification(self, token: str, service_id: int, email: str, lifetime: float) -> None:
        """A fresh token; older unused ones of the service stop working (one live token at a time)."""
        now = self.clock()
        with self.transaction():
            # A replaced token keeps none of its lifetime: ended at the time it was replaced, it came
            # to life again by a step forward made before then (`confirmation.token_expired`).
            self.conn.execute(
                "UPDATE premium_verifications SET expires_at = MIN(expires_at, created_at, ?)"
                " WHERE service_id = ? AND used_at IS NULL",
                (now, service_id),
            )
            self.conn.execute(
                "INSERT INTO premium_verifications (token, service_id, email, created_at, expires_at)"
                " VALUES (?,?,?,?,?)",
                (token, service_id, email, now, now + lifetime),
            )

    def verification(self, token: str) -> Verification | None:
        row = self.conn.execute(
            "SELECT token, service_id, email, created_at, expires_at, used_at FROM premium_verifications"
            " WHERE token = ?",
            (token,),
        ).fetchone()
        return Verification(*row) if row else None

    def use_verification(self, token: str) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE premium_verifications SET used_at = ? WHERE token = ?", (self.clock(), token)
            )

    # ---- premium MOs ---------------------------------------------------------------------------

    def mo_row(self, mo_id: int) -> tuple[str, str, str, float, int]:
        """(source, destination, text, received_at, parts) of a whole MO in table mo; `parts` are
        those that came (`MoRepo.parts`), not those a set joined by the timeout declared."""
        row = self.conn.execute(
            "SELECT source, destination, text, received_at FROM mo WHERE id = ?", (mo_id,)
        ).fetchone()
        return row[0], row[1], row[2], row[3], MoRepo(self.db, self.clock).parts(mo_id)

    def by_mo(self, mo_id: int) -> PremiumMo | None:
        """The premium MO made of the whole MO `mo_id` in table mo, if it was one."""
        row = self.conn.execute(f"SELECT {_PMO} FROM premium_mo WHERE mo_id = ?", (mo_id,)).fetchone()
        return PremiumMo(*row) if row else None

    def first_of(self, pmo_id: int) -> PremiumMo | None:
        """For the late parts of a long premium SMS: the premium MO of its first whole text, whose
        answer address the late parts' mail carries (one SMS, one answer); None for any other.

        By the link on the money record: late parts kept for a client's confirmation may be mailed
        after the purge deleted the rows of table mo."""
        row = self.conn.execute(
            f"SELECT {_PMO_F} FROM premium_mo p JOIN premium_mo f ON f.id = p.follows WHERE p.id = ?",
            (pmo_id,),
        ).fetchone()
        return PremiumMo(*row) if row else None

    def record_mo(self, **values: Any) -> int:
        """A premium MO's money record. The late parts of a long SMS (`mo.follows`) also name the
        premium MO of its first parts (`follows`), and a long one keeps when its first part came
        (`parts_at`, migration 60), by which it is billed: billing reads both long after the purge
        deleted the rows of table mo."""
        cols = ", ".join(values)
        marks = ",".join("?" * len(values))
        with self.transaction():
            cur = self.conn.execute(
                f"INSERT INTO premium_mo ({cols}, follows, parts_at) VALUES ({marks}, (SELECT f.id FROM mo l"
                " JOIN premium_mo f ON f.mo_id = l.follows WHERE l.id = ?),"
                " (SELECT parts_at FROM mo WHERE id = ?))",
                (*values.values(), values["mo_id"], values["mo_id"]),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def claim_mo(self, pmo_id: int, service: Service, why: str) -> None:
        """A premium MO no service took is the service's after all (its password came late): its
        money is billed to the service's account, and its note says why."""
        with self.transaction():
            self.conn.execute(
                "UPDATE premium_mo SET service_id = ?, account_id = ?, password = ?,"
                " note = COALESCE(note || '; ', '') || ? WHERE id = ?",
                (
                    service.id,
                    service.account_id,
                    service.password,
                    f"{why}: now {service.password}'s",
                    pmo_id,
                ),
            )

    def rebind_mo(self, pmo_id: int, account_id: int) -> None:
        """A kept premium MO of a month still to be billed is the account's its service moved to
        (`gateway.premium.moves.kept_to`): its money and its answer are that account's."""
        with self.transaction():
            self.conn.execute("UPDATE premium_mo SET account_id = ? WHERE id = ?", (account_id, pmo_id))

    def account_name(self, account_id: int) -> str:
        row = self.conn.execute("SELECT name FROM accounts WHERE id = ?", (account_id,)).fetchone()
        return str(row[0]) if row else f"#{account_id}"

    def transliterates(self, account_id: int) -> bool:
        """Whether the account's SMS, its premium answers among them, have Polish letters made plain."""
        row = self.conn.execute("SELECT transliterate FROM accounts WHERE id = ?", (account_id,)).fetchone()
        return bool(row and row[0])

    def settle_mo(self, pmo_id: int, state: str, note: str | None = None) -> None:
        """State of a premium MO; `mailed` also stamps when the client got it (the answer window)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE premium_mo SET state = ?, note = COALESCE(?, note),"
                " forwarded_at = CASE WHEN ? = 'mailed' THEN ? ELSE forwarded_at END WHERE id = ?",
                (state, note, state, self.clock(), pmo_id),
            )

    def release_mo(self, pmo_id: int, state: str, note: str) -> None:
        """A kept MO whose service went before its address confirmed: no client took it, so no
        client's account is owed its commission. Billing and `premium stats` count it under no
        service, as an MO for an unknown password (the client's account was paid for votes that
        went to the operator's fallback)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE premium_mo SET state = ?, note = ?, service_id = NULL, account_id = NULL"
                " WHERE id = ?",
                (state, note, pmo_id),
            )

    def mark_mo(self, mo_id: int, state: str, note: str | None) -> None:
        """What became of the row in table mo (shown by `smsgw mo list`)."""
        with self.transaction():
            self.conn.execute("UPDATE mo SET state = ?, note = ? WHERE id = ?", (state, note, mo_id))

    def by_token(self, token: str) -> PremiumMo | None:
        row = self.conn.execute(f"SELECT {_PMO} FROM premium_mo WHERE token = ?", (token,)).fetchone()
        return PremiumMo(*row) if row else None

    def awaiting(self, service_id: int) -> list[PremiumMo]:
        return [
            PremiumMo(*r)
            for r in self.conn.execute(
                f"SELECT {_PMO} FROM premium_mo WHERE service_id = ? AND state = 'awaiting' ORDER BY id",
                (service_id,),
            )
        ]

    def awaiting_from(self, phone: str) -> list[PremiumMo]:
        """The phone's MOs kept until their service's address confirms (`smsgw phone forget`)."""
        return [
            PremiumMo(*r)
            for r in self.conn.execute(
                f"SELECT {_PMO} FROM premium_mo WHERE phone = ? AND state = 'awaiting' ORDER BY id", (phone,)
            )
        ]

    def unclaim_mo(self, pmo_id: int) -> None:
        """A kept MO no client will take: no service's, and no account owed its commission (as
        `release_mo`), its state left to the caller."""
        with self.transaction():
            self.conn.execute(
                "UPDATE premium_mo SET service_id = NULL, account_id = NULL WHERE id = ?", (pmo_id,)
            )

    def count_awaiting(self, service_id: int) -> int:
        return int(
            self.conn.execute(
                "SELECT COUNT(*) FROM premium_mo WHERE service_id = ? AND state = 'awaiting'", (service_id,)
            ).fetchone()[0]
        )

    def answerable(
        self, service: Service, since: float, answers_per_mo: int, account_id: int | None = None
    ) -> tuple[int, float | None]:
        """(how many, the last mailed at) of the service's SMS mailed to its client since `since`
        with a free answer left: those its client may still answer. Read off its account's rows
        (`premium_mo_billing`); `account_id`, another account's: one the service moved away from,
        whose votes stay its to answer (`vote_accounts`)."""
        # As `answers_used` counts them: an answer no SMSC took used none up.
        row = self.conn.execute(
            "SELECT COUNT(*), MAX(forwarded_at) FROM premium_mo pm WHERE account_id = ? AND service_id = ?"
            " AND state = 'mailed' AND forwarded_at >= ?"
            f" AND (answers < ? OR ({USED_ANSWERS.format('pm.id')}) < ?)",
            (account_id or service.account_id, service.id, since, answers_per_mo, answers_per_mo),
        ).fetchone()
        return int(row[0]), row[1]

    def vote_accounts(self, service: Service) -> list[int]:
        """The accounts the service's SMS mailed to a client are of: its own first, then each it
        moved away from (`premium set --account`), whose votes stay theirs to answer."""
        rows = self.conn.execute(
            "SELECT DISTINCT account_id FROM premium_mo WHERE service_id = ? AND state = 'mailed'"
            " AND account_id IS NOT NULL AND account_id != ? ORDER BY account_id",
            (service.id, service.account_id),
        )
        return [service.account_id, *(int(r[0]) for r in rows)]

    # ---- retention ------------------------------------------------------------------------------

    def by_id(self, pmo_id: int) -> PremiumMo:
        return PremiumMo(
            *self.conn.execute(f"SELECT {_PMO} FROM premium_mo WHERE id = ?", (pmo_id,)).fetchone()
        )
