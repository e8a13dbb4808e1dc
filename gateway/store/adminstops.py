"""What an admin's change asks of the parts the running dispatcher has claimed ahead.

The dispatcher claims parts ahead of its links' windows (`gateway.claimahead`): for a moment they
are `active` in the store and held in its memory, out of reach of a change written by the CLI or
the panel. A suspension, an opt-out (the shared list or an account's own) and a cancel all reach
them one way: the change's transaction gives the settings generation a new value (the schema's
triggers do it for accounts and the shared list, `optouts_added` for a number added to the shared
list, migration 79; `tell_dispatcher` for the rest), the dispatcher's
watch (`gateway.suspensions`) sees it, and what it has claimed and not yet handed to a link is
looked at again before it goes. A part already handed to a link is not called back.
"""

from __future__ import annotations

import sqlite3

# The note an admin's cancel puts on a claimed part (before any note it has: a maybe-sent one keeps
# its meaning, `maybe_sent_note` reads it anywhere in the text): the dispatcher ends the part
# `cancelled` instead of sending it, or the claim does when it comes back to the queue first.
CANCEL_ASKED = "cancel asked by admin"
# How long a cancel (CLI, panel) waits for the dispatcher's verdict on the parts it has claimed: it
# looks every 0.05 s (`gateway.suspensions`); a part still claimed after this is on the wire.
CANCEL_VERDICT_SECONDS = 2.0
# Part states of an SMS an SMSC has taken: a cancel cannot call it back.
SENT_STATES = ("submitted", "delivered", "unreported")


def tell_dispatcher(conn: sqlite3.Connection) -> None:
    """Inside a change's transaction: the running dispatcher (this process or another) looks at the
    parts it has claimed again, as it does after a suspension."""
    conn.execute("UPDATE settings_generation SET value = random()")


def ask_claimed(conn: sqlite3.Connection, message_id: int) -> int:
    """Inside the cancel's transaction: mark the message's claimed parts for the dispatcher to end
    unsent, and tell it. Returns how many were marked (again: a second cancel asks once more)."""
    n = conn.execute(
        "UPDATE parts SET error = CASE WHEN error IS NULL THEN ? ELSE ? || '; ' || error END"
        " WHERE message_id = ? AND state = 'active' AND (error IS NULL OR instr(error, ?) = 0)",
        (CANCEL_ASKED, CANCEL_ASKED, message_id, CANCEL_ASKED),
    ).rowcount
    asked = conn.execute(
        "SELECT COUNT(*) FROM parts WHERE message_id = ? AND state = 'active' AND instr(error, ?) > 0",
        (message_id, CANCEL_ASKED),
    ).fetchone()[0]
    if n:
        tell_dispatcher(conn)
    return int(asked)


def cancel_asked(conn: sqlite3.Connection, part_ids: list[int]) -> set[int]:
    """Which of these claimed parts an admin's cancel marked: one indexed read by id."""
    found: set[int] = set()
    for start in range(0, len(part_ids), 500):
        chunk = part_ids[start : start + 500]
        found.update(
            pid
            for (pid,) in conn.execute(
                f"SELECT id FROM parts WHERE id IN ({','.join('?' * len(chunk))})"
                # `+state`: the ids by rowid; on the state index this read every part in flight.
                " AND +state = 'active' AND instr(error, ?) > 0",
                (*chunk, CANCEL_ASKED),
            )
        )
    return found


def parts_now(conn: sqlite3.Connection, message_id: int) -> list[tuple[int, str, bool]]:
    """(seq, state, cancel asked and not yet decided) of each of the message's parts."""
    rows = conn.execute(
        "SELECT seq, state, state = 'active' AND instr(COALESCE(error, ''), ?) > 0 FROM parts"
        " WHERE message_id = ? ORDER BY seq",
        (CANCEL_ASKED, message_id),
    )
    return [(int(seq), str(state), bool(asked)) for seq, state, asked in rows]


def cannot_call_back(parts: list[tuple[int, str, bool]], total: int) -> list[str]:
    """What a cancel says of the parts on their way (handed to a link) or taken by an SMSC."""
    said = []
    for seq, state, _asked in parts:
        name = f"part {seq} of {total}" if total > 1 else "its SMS"
        if state == "active":
            said.append(f"{name} is being sent now: it cannot be called back")
        elif state in SENT_STATES:
            said.append(f"{name} was sent: it cannot be called back")
    return said
