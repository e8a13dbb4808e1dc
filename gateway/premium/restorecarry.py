"""What `smsgw restore` takes over of the premium SMS from the database it replaces (attached as `old`),
after the store has carried their MOs (`gateway.restorecarries`, `temp.carried_mo`). Here because the
votes are this package's tables, which the store does not name (`tests/test_feature_boundaries.py`).

The phone paid for a vote received after the backup: restored without its money record, it was never
billed to the client; one mailed since (its service confirmed after the backup) was mailed again. Each
record is carried once: one in both takes the replaced row, one added since goes in under its own id.
A vote of a service the copy lacks (added after the backup) is not carried: its id may be another
service's after the restore; its MO is (`smsgw mo list` shows it). Such services are not carried
either, as the accounts and users added since are not: the line names them, to be added again.
"""

from __future__ import annotations

import sqlite3

from gateway.store.restorerows import add_later, in_both, same_account, take_changed

_SAME_VOTE = "c.id = o.id AND c.mo_id = o.mo_id AND c.number = o.number"
_SAME_SERVICE = (
    "(o.service_id IS NULL OR EXISTS (SELECT 1 FROM main.premium_services s JOIN old.premium_services x"
    " ON x.id = s.id AND x.password = s.password AND x.created_at = s.created_at WHERE s.id = o.service_id))"
)
_OURS = "o.premium_mo_id IN (SELECT id FROM main.premium_mo)"


def carry(copy: sqlite3.Connection) -> str | None:
    """The votes changed since, those of the MOs carried, and the free answers and corrections added
    since to votes the copy holds. What was carried, said for the restore's line."""
    if not in_both(copy, "premium_services"):  # a backup from before the premium SMS
        return None
    # Every vote: one of a service confirmed since was mailed then, its MO row unchanged.
    take_changed(copy, "premium_mo", _SAME_VOTE)
    votes = add_later(
        copy,
        "premium_mo",
        f"o.mo_id IN (SELECT id FROM main.mo) AND {_SAME_SERVICE} AND {same_account('o.account_id')}",
    )
    add_later(copy, "premium_answers", _OURS)
    add_later(copy, "premium_corrections", f"{_OURS} AND {same_account('o.account_id')}")
    (left,) = copy.execute(
        "SELECT COUNT(*) FROM old.premium_mo o WHERE o.mo_id IN (SELECT id FROM temp.carried_mo)"
        " AND NOT EXISTS (SELECT 1 FROM main.premium_mo c WHERE c.id = o.id AND c.mo_id = o.mo_id)"
    ).fetchone()
    services = [
        str(r[0])
        for r in copy.execute(
            "SELECT o.password FROM old.premium_services o WHERE NOT EXISTS (SELECT 1"
            " FROM main.premium_services c WHERE c.id = o.id AND c.password = o.password"
            " AND c.created_at = o.created_at) ORDER BY o.id"
        )
    ]
    said = [f"{len(votes)} premium SMS"] if votes else []
    if left:  # the line tells the admin why the month's bills lack them
        said.append(f"{left} premium SMS of a service or account the backup lacks not carried (not billed)")
    if services:  # a service is the account's setting, as its users are: the backup's stand
        said.append(
            f"premium services added after the backup not carried ({', '.join(services)}): add them again"
        )
    return ", ".join(said) or None
