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
# A part found claimed at a start (`QueueRepo.recover_active`): the store cannot tell whether its submit
# was on the wire when the gateway stopped (claimed parts wait for their link's pacing first), so its
# re-send is counted as a possible duplicate, but nothing says an SMSC was ever asked.
RECOVERED = "recovered after restart (possible duplicate)"
LINK_LOST = "the connection was lost with the submit on the wire (possible duplicate)"
# A part that expires waiting to go: never sent, or with one of the notes below on it, maybe sent.
NEVER_SENT_EXPIRED = "validity period expired before it could be sent"
MAYBE_SENT_EXPIRED = (
    "validity period expired; delivery unknown: an earlier attempt went unanswered by the SMSC"
    " and may have reached the phone"
)
# A part recovered after a restart (`RECOVERED`) that expires before it goes again: worded apart, since
# it may never have been sent (kill -9 while it waited for the link's pacing). Said as "went unanswered
# by the SMSC and may have reached the phone", its bounce told of a submit no SMSC had seen.
RECOVERED_EXPIRED = (
    "validity period expired; delivery unknown: the gateway stopped while it may have been sending it"
)
# A part that expires waiting to go again after the operator refused it for the time being (ESME_RSYSERR,
# a CIMD2 900 error, a throttle): the refusal it last got follows this note, as the dispatcher wrote it
# (`ESME_RSYSERR (0x08)`). Replaced by `NEVER_SENT_EXPIRED`, its bounce told the user to send it again,
# when the operator's fault is the admin's to take up; `gateway.bounce` names the refusal as the SMSC's
# diagnostic, and `gateway.reasons` puts it in words.
REFUSED_EXPIRED = "validity period expired after the operator refused it for the time being, lastly with "
# A part handed back because no link to the operator was up (`Outcomes.settle_unsendable`), and its
# expiry so: the cause is the gateway's links, which its admin can see to; "expired before it could be
# sent ... send it again" sent the user into the same outage.
NO_LINK_UP = "waiting for a link to the operator: none that serves this number was up"
# A part of a long SMS handed back while the link that took another part of it is down (or no longer
# configured) and a link of another SMSC is up (`LinkChoice.waits_for`): "no link up" was untrue, and
# hid why it waits (`gateway.longsms`: the phone joins the parts one SMSC sent alike).
TIED_WAIT = "waiting for link {}, which took another part of this SMS and is {}"
# What `TIED_WAIT` (and `TIED_EXPIRED`) says of such a link no longer in the configuration; else "down".
LINK_GONE = "no longer configured"
# ... of one configured whose routes no longer take the number (changed before a restart).
LINK_OFF_ROUTE = "no longer on this number's route"
# The parts of a long SMS that cannot go again whole by another link, since part {} of it failed,
# waits on hold or was cancelled (`gateway.longsms`): they wait unclaimed for a retry or their end.
WITH_STUCK_PART = (
    "waiting for an admin's retry of this SMS: it cannot go again whole by another link while part {}"
    " of it is held, failed or cancelled"
)
NO_LINK_EXPIRED = "validity period expired while no link to the operator serving this number was up"
# The expiries of a part last noted `TIED_WAIT` and `WITH_STUCK_PART`, naming the link that was down and
# the part held: "expired before it could be sent" hid both, and sent the user to send it again into the
# same outage, or past an SMS an admin had to see to.
TIED_EXPIRED = (
    "validity period expired while waiting for link {}, which took another part of this SMS and was {}"
)
STUCK_EXPIRED = (
    "validity period expired while waiting for an admin's retry of this SMS: part {} of it was held,"
    " failed or cancelled"
)
# How an SMSC's refusal the dispatcher keeps on a waiting part begins (`smsc.smpp.pdu.status_text`,
# the CIMD2 link's `CIMD2 900:…`), alone or after a hold's "50 attempts failed; last: "
# (`gateway.unanswered.attempts_spent`): SQL GLOB patterns, so that no other hold's or admin's note is
# taken for one. `LAST_SAID` starts the refusal in the hold's note. An SMPP refusal may come in a
# generic_nack (`generic_nack ESME_RSYSERR (0x08)`, `smsc.smpp.submits`): the operator's all the same.
SMSC_REFUSAL_GLOBS = (
    "ESME_*",
    "generic_nack ESME_*",
    "CIMD2 *",
    "[0-9]* attempts failed; last: ESME_*",
    "[0-9]* attempts failed; last: generic_nack ESME_*",
    "[0-9]* attempts failed; last: CIMD2 *",
)
LAST_SAID = "; last: "
# The note an admin's retry (`AdminRepo.retry_message`) puts on a part that carried one of the notes
# below: without it the re-send of a part held or expired with its last submit unanswered was not
# logged as a possible duplicate.
RETRIED_MAYBE_SENT = (
    "sent again by an admin: an earlier attempt may have reached the phone (possible duplicate)"
)
# `parts.resent_after` (migration 74) of a part taken after a re-send whose earlier submit this
# process did not see (`ClaimedPart.maybe_sent` at its claim after a restart): no link to name.
EARLIER_UNKNOWN = ""
# What `smsgw queue show` and the panel's message page say of such a part (`resent_words`).
RESENT_TWICE = "may have reached the phone twice: {}"
RESENT_AFTER_LINK = "an earlier submit by link {} went unanswered"
RESENT_AFTER_RESTART = (
    "an earlier submit, before a restart of the gateway, may have gone with no answer recorded"
)
# The notes of a part whose last submit the SMSC may have taken: its next send may be a duplicate.
# Defined once: the claim (`ClaimedPart.maybe_sent`), the expiry's note, the suspension's hold
# (`gateway.store.policy`) and the retry all read them through `maybe_sent_note`.
MAYBE_SENT_NOTES = (
    AWAITING_LATE,
    RECOVERED,
    LINK_LOST,
    MAYBE_SENT_EXPIRED,
    RETRIED_MAYBE_SENT,
    RECOVERED_EXPIRED,
)
# The notes of a part that may have been cut off by a stop of the gateway, not by an SMSC's silence:
# its expiry says `RECOVERED_EXPIRED` (`expiry_note`).
STOPPED_NOTES = (RECOVERED, RECOVERED_EXPIRED)


def maybe_sent_note(column: str = "error") -> str:
    """SQL true when `column` carries one of `MAYBE_SENT_NOTES` (bind them after it, in order), NULL
    when the column is NULL: one predicate, so that a note added to the list is read everywhere."""
    return "(" + " OR ".join([f"instr({column}, ?) > 0"] * len(MAYBE_SENT_NOTES)) + ")"


def expiry_note(column: str = "error") -> tuple[str, tuple[str | int, ...]]:
    """SQL for the note of a part that expires waiting to go, by its last note in `column`, and the
    arguments to bind with it: recovered after a stop, `RECOVERED_EXPIRED`; another note that its last
    submit may have reached the phone, `MAYBE_SENT_EXPIRED`; an SMSC's refusal for the time being,
    `REFUSED_EXPIRED` and that refusal (the cause the user and the admin need, R-6.3); handed back
    with no link up, `NO_LINK_EXPIRED`; waiting for its long SMS's link down, `TIED_EXPIRED` naming
    it; behind a part held, `STUCK_EXPIRED` naming that part; else `NEVER_SENT_EXPIRED`."""
    stopped = "(" + " OR ".join([f"instr({column}, ?) > 0"] * len(STOPPED_NOTES)) + ")"
    refused = "(" + " OR ".join([f"{column} GLOB ?"] * len(SMSC_REFUSAL_GLOBS)) + ")"
    last = f"substr({column}, CASE WHEN instr({column}, ?) > 0 THEN instr({column}, ?) + ? ELSE 1 END)"
    # The link's name and state, or the part's number, cut out of the note.
    tied = f"replace(substr({column}, ?), ?, ?)"
    stuck = f"substr({column}, ?, instr({column}, ?) - ?)"
    sql = (
        f"CASE WHEN {stopped} THEN ? WHEN {maybe_sent_note(column)} THEN ?"
        f" WHEN {refused} THEN ? || {last} WHEN {column} = ? THEN ?"
        f" WHEN {column} GLOB ? THEN ? || {tied} WHEN {column} GLOB ? THEN ? || {stuck} || ? ELSE ? END"
    )
    tied_said = TIED_WAIT.split("{}", 1)[0]
    tied_expired = TIED_EXPIRED.split("{}", 1)[0]
    stuck_said, stuck_rest = WITH_STUCK_PART.split("{}")
    stuck_expired, stuck_expired_rest = STUCK_EXPIRED.split("{}")
    args = (
        *STOPPED_NOTES,
        RECOVERED_EXPIRED,
        *MAYBE_SENT_NOTES,
        MAYBE_SENT_EXPIRED,
        *SMSC_REFUSAL_GLOBS,
        REFUSED_EXPIRED,
        LAST_SAID,
        LAST_SAID,
        len(LAST_SAID),
        NO_LINK_UP,
        NO_LINK_EXPIRED,
        TIED_WAIT.format("*", "*"),
        tied_expired,
        len(tied_said) + 1,
        " and is ",
        " and was ",
        WITH_STUCK_PART.format("*"),
        stuck_expired,
        len(stuck_said) + 1,
        stuck_rest,
        len(stuck_said) + 1,
        stuck_expired_rest,
        NEVER_SENT_EXPIRED,
    )
    return sql, args


def resent_words(resent_after: str | None) -> str | None:
    """What a part's `resent_after` says, in the words both `queue show` and the panel print; None
    for a part sent once, or whose earlier submit was answered."""
    if resent_after is None:
        return None
    earlier = (
        RESENT_AFTER_RESTART if resent_after == EARLIER_UNKNOWN else RESENT_AFTER_LINK.format(resent_after)
    )
    return RESENT_TWICE.format(earlier)
