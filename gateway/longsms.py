"""A long SMS whose link is gone for good: the whole SMS goes again by another link, under a new
reference.

A phone joins the parts of a long SMS by their originator and reference. Parts of one SMS that
left by two SMSCs reach it with whatever originator each SMSC writes (and a reference the other
SMSC may use for an SMS of its own), each billed by its operator, their receipts split between the
links: the phone is left with an SMS it cannot put together. So the rest of a long SMS an SMSC took a
part of waits for that link (`gateway.linkchoice`), through a temporary error or a session lost,
while the link is down or refuses the parts for now. Once it has waited LONG_SMS_WAIT_SECONDS since
the first such part (the link took none of its parts meanwhile: a reconnect takes up to a minute) and
another link up may take its number, the whole SMS goes again by that link, all its parts, under a
new reference: the parts the first link took (a phone that got them holds an incomplete SMS it never
shows whole; their receipts no longer count, and that operator bills them) are the known cost of the
move, which nothing else can avoid once the first link is gone. An SMS a part of which failed, waits
on hold or was cancelled is not moved: its parts that wait are left unclaimed (due at their expiry,
`WITH_STUCK_PART`) until an admin's retry of the SMS sends it again whole or they expire; handed back
for a second, they were claimed and handed back every second until their end.
"""

from __future__ import annotations

import structlog

from gateway.linkcounted import final_parts, keep
from gateway.store.accepting import concat_udh
from gateway.store.db import Store
from gateway.store.partnotes import WITH_STUCK_PART

log = structlog.get_logger(__name__)

# How long the rest of a long SMS waits for the link that took a part of it, down or refusing the
# parts for now, before the whole SMS goes again by another link. Past the links' longest pause
# between reconnects (a minute), so that an SMSC restarting or a network blip moves nothing.
LONG_SMS_WAIT_SECONDS = 120.0
MOVED_NOTE = "sent again whole under a new reference: link {} took part of it, then was gone for {:.0f} s"
# Part states the whole SMS goes again from: those sent by the first link, and those still to go.
_SENT = ("submitted", "delivered", "unreported")
MOVABLE = frozenset((*_SENT, "queued", "deferred", "active"))


def send_whole_again(store: Store, message_id: int, link: str, waited: float) -> bool:
    """Inside a store write: the long SMS goes again whole, due now, under a new reference. Its parts
    the dispatcher held claimed (none was on the wire: `LinkChoice.moving`) go back unsent, their
    attempt not counted; a release of one of them that comes later finds it queued, and leaves it.
    False when it stays as it was (module docstring)."""
    conn, now = store.db.conn, store.clock()
    row = conn.execute(
        "SELECT recipient, parts_total, concat_ref FROM messages WHERE id = ?", (message_id,)
    ).fetchone()
    sql = "SELECT id, seq, state, expires_at FROM parts WHERE message_id = ?"
    found = conn.execute(sql, (message_id,)).fetchall()
    parts = [(pid, seq, state) for pid, seq, state, _end in found]
    if row is None or row[2] is None:  # no long SMS (any more): the parts claimed go back
        for pid, _seq, state in parts:
            if state == "active":
                store.queue.release(pid, delay=1.0, count=False)
        return False
    if (stuck := next((seq for _pid, seq, state in parts if state not in MOVABLE), None)) is not None:
        note = WITH_STUCK_PART.format(stuck)
        for pid, _seq, state, end in found:  # it ends as it would have, or goes again by a retry
            if state == "active":
                store.queue.release(pid, delay=None, due=end, count=False, refusal=note)
            elif state in ("queued", "deferred"):  # not claimed for nothing before then either
                later = "UPDATE parts SET state = 'deferred', next_attempt_at = ? WHERE id = ?"
                conn.execute(later, (end, pid))
        log.info("mt.long_sms_not_moved", message=message_id, link=link, part=stuck)
        return False
    recipient, total, old_ref = row
    ref = store.queue.next_concat_ref(recipient)
    note = MOVED_NOTE.format(link, waited)
    counted = final_parts(conn, message_id)  # its parts delivered or unreported leave those states
    for pid, seq, state in parts:
        conn.execute(
            "UPDATE parts SET udh = ?, state = CASE WHEN state = 'queued' THEN state ELSE 'deferred' END,"
            " next_attempt_at = ?, attempts = attempts - ?, link = NULL, smsc_id = NULL,"
            " submitted_at = NULL, done_at = NULL, error = ? WHERE id = ?",
            (concat_udh(ref, total, seq), now, int(state == "active"), note, pid),
        )
    conn.execute("UPDATE messages SET concat_ref = ? WHERE id = ?", (ref, message_id))
    keep(conn, counted)  # and stay counted under the link that finished them: no counter falls
    sent = sum(1 for _pid, _seq, state in parts if state in _SENT)
    log.warning("mt.long_sms_moved", message=message_id, link=link, sent_before=sent,
                parts=total, reference=ref, old_reference=old_ref)  # fmt: skip
    return True


def reference_changed(store: Store, part_id: int, udh: bytes) -> bool:
    """Inside a store write: whether the part's long SMS went again whole (`send_whole_again`) since a
    submit of it with `udh` went out: a late answer to that submit is the old SMS's, not the part's."""
    row = store.db.conn.execute("SELECT udh FROM parts WHERE id = ?", (part_id,)).fetchone()
    return row is not None and row[0] is not None and bytes(row[0]) != udh


def moved_away(store: Store) -> dict[int, str]:
    """Inside a store write, at a start: the long SMS moved away from a link whose parts still wait
    to go again, by the link their note names (`MOVED_NOTE`). Kept in memory alone, the link was
    forgotten by a restart right after the move, and the SMS could go back to it and move again."""
    said, rest = MOVED_NOTE.split("{}", 1)
    gone = rest.split("{", 1)[0]  # what follows the link's name
    sql = (
        "SELECT message_id, substr(error, ?, instr(error, ?) - ?) FROM parts"
        " WHERE state IN ('queued', 'deferred') AND error GLOB ? GROUP BY message_id"
    )
    # The link's end in the pattern too: a protocol switch's note (`linkprotocol.NOTE`) begins with
    # the same words, and its prefix came back as a link name to keep the SMS from.
    args = (len(said) + 1, gone, len(said) + 1, f"{said}*{gone}*")
    return {mid: link for mid, link in store.db.conn.execute(sql, args) if link}
