"""A paid vote's money record after the clock steps back: it moves with its MO (`MoRepo`), in the same
write, so that a vote received while the clock ran ahead is billed in the month `mo list` and the
re-billing put it in, not the next. Here because `premium_mo` is this package's table, which the store
does not name (`tests/test_feature_boundaries.py`)."""

from __future__ import annotations

import sqlite3

from gateway.store.clockstep import ClockStep


def shift(conn: sqlite3.Connection, step: ClockStep, mos: tuple[str, tuple[float, ...]]) -> None:
    """Move the votes of the MOs the step moves (`mos`: `MoRepo.moving`, SQL on table mo and its
    arguments). Run before the MOs move: their times choose the rows. Receipt and parts' times move by
    what the step undoes of the MO's clock; the mail to the client only if stamped on the same clock
    (at or after the receipt: one mailed after the step reads before it, as an MO's acknowledgement)."""
    back, args = step.back_by("mo", "mo_id")
    where, bounds = mos
    conn.execute(
        f"UPDATE premium_mo SET received_at = received_at - ({back}), parts_at = parts_at - ({back}),"
        f" forwarded_at = forwarded_at - (CASE WHEN forwarded_at >= received_at THEN {back} ELSE 0 END)"
        f" WHERE mo_id IN (SELECT id FROM mo WHERE {where})",
        (*args, *args, *args, *bounds),
    )
