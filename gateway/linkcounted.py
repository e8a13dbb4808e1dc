"""The `/metrics` part counters through a link type switch (`gateway.linkprotocol`) and a long SMS sent
again whole (`gateway.longsms`): each final part counted once, under the link that finished it, and no
counter lower after the change than before it.

`smsgw_parts_total{link,state}` counts the rows in a final state under their link, plus what left a
final state (`purged_counts`, gateway/web/counts.py). A switch changes rows under the counters:

- with a block keeping the old bind, the parts it sent go under that block's name (their reports
  come by it, the rest of their long SMS waits for it): a part already delivered or unreported was
  kept counted under the old name, and counted again under the new one by its row, twice in all;
- with none, a half-sent long SMS goes again whole (`gateway.longsms`): its parts delivered or
  unreported left those states, and the old name's counters fell at the start, which Prometheus reads
  as a counter reset and `rate()` as everything ever counted arriving at once. A long SMS whose link
  was down for LONG_SMS_WAIT_SECONDS goes again whole the same way (`gateway.linkchoice`), and its
  link's counters fell likewise: `send_whole_again` keeps their counts on both paths (`final_parts`
  before it resets the parts, `keep` after).

So the start keeps what such a part counted under the name that finished it, and takes the row the
follower gains off the follower's count (a negative `purged_counts` entry under its name): the sum
per label is the same before and after the switch, whatever rows moved. Later changes of those rows
(a purge, a retry) keep their counts as for any row, so the sums stay right.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from gateway.store.counted import keep_counted
from gateway.store.settling import FINAL_PART

_FINAL = ", ".join(f"'{state}'" for state in FINAL_PART)


def moving_to(conn: sqlite3.Connection, name: str, by: str, ids: list[int]) -> None:
    """Before the parts `ids` go from `name` to `by`: those final stay counted under `name` alone.
    Read by their ids (NOT INDEXED: no index but the rowid), not by parts_due's range of every final
    part, which SQLite chose for the state: every delivered part kept, read twice a chunk of 500."""
    marks = ",".join("?" * len(ids))
    final = f"FROM parts NOT INDEXED WHERE id IN ({marks}) AND state IN ({_FINAL}) GROUP BY state"
    keep_counted(conn, "parts", f"SELECT ?, state, COUNT(*) {final}", (name, *ids))
    keep_counted(conn, "parts", f"SELECT ?, state, -COUNT(*) {final}", (by, *ids))


def final_parts(conn: sqlite3.Connection, message_id: int) -> list[tuple[str, str, int]]:
    """The message's parts in a final state, by link and state: read before it goes again whole."""
    return conn.execute(
        "SELECT COALESCE(link, ''), state, COUNT(*) FROM parts INDEXED BY parts_message"  # as `moving_to`
        f" WHERE message_id = ? AND state IN ({_FINAL}) GROUP BY 1, 2",
        (message_id,),
    ).fetchall()


def keep(conn: sqlite3.Connection, counted: Iterable[tuple[str, str, int]]) -> None:
    """Once the message went again whole: what its parts counted before stays counted."""
    for label, state, n in counted:
        keep_counted(conn, "parts", "SELECT ?, ?, ?", (label, state, n))
