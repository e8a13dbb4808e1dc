"""The link a premium SMS came by, as its answer must leave: by the bind that brought it.

`mo.link` is the name the SMS came by. When that block's `type` changed since and its old bind went
to another block (`gateway.linkprotocol`: the old block kept under a new name), the name is another
SMSC bind now, maybe another operator's, whose short code is not the premium number: an answer pinned
to the name left by it. The start that saw the change notes it in the store's key/value table (keys
`link_moved/NAME/WHEN`, value `LINK|LAST_MO_ID`): the MOs received under the name until then (an id
and a time no later than the note's: an id reused after a purge, or a clock stepped back, alone does
not make an MO the old bind's) came by the bind that LINK has now.
"""

from __future__ import annotations

import sqlite3

from gateway.store.keyvalue import keys_under

PREFIX = "link_moved/"


def note_move(conn: sqlite3.Connection, name: str, by: str, now: float) -> None:
    """Inside the start's write: the MOs received under `name` so far came by the bind `by` has now."""
    (last,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM mo").fetchone()
    conn.execute(
        "INSERT INTO billing_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        (f"{PREFIX}{name}/{now:.6f}", f"{by}|{last}"),
    )


def _notes(conn: sqlite3.Connection) -> dict[str, list[tuple[float, int, str]]]:
    """Name -> (when, last MO id, link that has its old bind), earliest first."""
    notes: dict[str, list[tuple[float, int, str]]] = {}
    for rest, value in keys_under(conn, PREFIX):
        name, _, when = str(rest).rpartition("/")
        by, _, last = str(value).rpartition("|")
        notes.setdefault(name, []).append((float(when), int(last), by))
    for moves in notes.values():
        moves.sort()
    return notes


def mo_link(conn: sqlite3.Connection, mo_id: int) -> str | None:
    """The configured name of the bind the MO came by; None once the retention purge has deleted it.

    A bind that moved again later (its new block's `type` changed in turn) is followed on: each move
    after the one before, so a chain of names ends."""
    row = conn.execute("SELECT link, received_at FROM mo WHERE id = ?", (mo_id,)).fetchone()
    if row is None:
        return None
    link, received = str(row[0]), float(row[1])
    notes = _notes(conn)
    since = float("-inf")
    while True:
        move = next(
            (m for m in notes.get(link, ()) if m[0] > since and m[0] >= received and m[1] >= mo_id), None
        )
        if move is None:
            return link
        since, _last, link = move
