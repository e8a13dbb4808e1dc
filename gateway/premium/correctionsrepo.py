"""The premium corrections: a premium MO's move booked after its month was billed.

Its own table (`premium_corrections`, migration 38): the MO's row stays as billed, and each move
adds a reversal for the party billed and an entry for the new one (`gateway.premium.corrections`
decides when; billing and `gateway.premium.stats` read them by the month they were booked in).
Part of `PremiumRepo`, as `MoRepo` holds its segments: whoever moves an MO holds the one repository,
and every verb joins the caller's transaction, so a move is booked in the write that changes the MO.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.store.repository import Repository

if TYPE_CHECKING:
    from gateway.premium.repo import PremiumMo


class CorrectionsRepo(Repository):
    def book_correction(
        self,
        pmo: PremiumMo,
        account_id: int | None,
        service_id: int | None,
        sign: int,
        status: str,
        note: str,
    ) -> None:
        """One side of a premium MO's move after its month was billed (`gateway.premium.corrections`):
        its SMS, parts and money, signed, booked for `account_id` now. The late parts of an SMS
        (`follows`) move their parts and money, not an SMS, as they are billed."""
        late = self.conn.execute("SELECT follows FROM premium_mo WHERE id = ?", (pmo.id,)).fetchone()[0]
        with self.transaction():
            self.conn.execute(
                "INSERT INTO premium_corrections (premium_mo_id, account_id, service_id, sms, parts, price,"
                " commission, status, note, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    pmo.id,
                    account_id,
                    service_id,
                    0 if late is not None else sign,
                    sign * pmo.parts,
                    sign * pmo.price,
                    sign * pmo.commission,
                    status,
                    note,
                    self.clock(),
                ),
            )

    def corrected_to(self, pmo_id: int) -> tuple[int | None, int | None, str] | None:
        """(service, account, billing status) a correction last booked the premium MO to, if any."""
        row = self.conn.execute(
            # Each move books the reversal first, then the new party's entry: the last row is that.
            "SELECT service_id, account_id, status FROM premium_corrections"
            " WHERE premium_mo_id = ? ORDER BY id DESC LIMIT 1",
            (pmo_id,),
        ).fetchone()
        return (row[0], row[1], row[2]) if row else None
