"""The notes a part carries in `parts.error` that say whether its last submit may have reached the phone.

A part sent without an answer (the link went, the daemon stopped, the SMSC never answered) may be on
the phone already: its next send may be a duplicate, which the claim (`ClaimedPart.maybe_sent`) logs
and counts, the expiry says in its bounce ("delivery unknown"), a suspension does not hold and an
admin's retry, hold or cancel keeps. They all recognise such a part by one of these notes in its
error, through the one predicate `maybe_sent_note`.
"""

from __future__ import annotations

# Notes on a part that went to an SMSC without an answer: the SMSC may have taken it after all.
AWAITING_LATE = "waiting for a late answer before sending again"
RECOVERED = "recovered after restart (possible duplicate)"
LINK_LOST = "the connection was lost with the submit on the wire (possible duplicate)"
# A part that expires waiting to go: never sent, or with one of the notes below on it, maybe sent.
NEVER_SENT_EXPIRED = "validity period expired before it could be sent"
MAYBE_SENT_EXPIRED = (
    "validity period expired; delivery unknown: an earlier attempt went unanswered by the SMSC"
    " and may have reached the phone"
)
# The note an admin's retry (`AdminRepo.retry_message`) puts on a part that carried one of the notes
# below: without it the re-send of a part held or expired with its last submit unanswered was not
# logged as a possible duplicate.
RETRIED_MAYBE_SENT = (
    "sent again by an admin: an earlier attempt may have reached the phone (possible duplicate)"
)
# The notes of a part whose last submit the SMSC may have taken: its next send may be a duplicate.
# Defined once: the claim (`ClaimedPart.maybe_sent`), the expiry's note, the suspension's hold
# (`gateway.store.policy`) and the retry all read them through `maybe_sent_note`.
MAYBE_SENT_NOTES = (AWAITING_LATE, RECOVERED, LINK_LOST, MAYBE_SENT_EXPIRED, RETRIED_MAYBE_SENT)


def maybe_sent_note(column: str = "error") -> str:
    """SQL true when `column` carries one of `MAYBE_SENT_NOTES` (bind them after it, in order), NULL
    when the column is NULL: one predicate, so that a note added to the list is read everywhere."""
    return "(" + " OR ".join([f"instr({column}, ?) > 0"] * len(MAYBE_SENT_NOTES)) + ")"
