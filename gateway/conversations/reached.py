"""Which of a phone's conversations its answer answers (R-3.1): the one whose SMS last reached it.

A conversation is opened or moved on when its mail is accepted (`ConversationsRepo.record_mt`),
long before its SMS may leave: held for quiet hours, queued behind an outage, then perhaps
cancelled, expired unsent or refused at submit. The phone never saw such an SMS, so an answer
cannot be to it: it goes to the user whose SMS last went to the SMSC (a part submitted, delivered
or ended without a report), as of when that SMS went, quoting that SMS. Read only here, on the MO
path, from the phone's messages (`messages_recipient`): acceptance, submit and DLR do no more work.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gateway import forwarded
from gateway.configgateway import MAX_VALIDITY_HOURS
from gateway.conversations import inflight, recent
from gateway.conversations.numbers import normalise
from gateway.conversations.rows import COLUMNS, SINCE, WIDEST, Conversation
from gateway.handoffs import Handoffs
from gateway.store.partnotes import MAYBE_SENT_NOTES, maybe_sent_note

# A part in one of these states was taken by an SMSC: the phone got it, or may have.
_REACHED = "('submitted', 'delivered', 'unreported')"
# The MO's write must stay short, and the scan reads the phone's newest SMS back from the answer:
# at most SCAN_LIMIT of them from the conversations' users (a user alerting the phone every few
# minutes for a month sent thousands; 2,000 with a look into parts each took 24 ms of the event
# loop), and at most WALK_LIMIT of anyone's to find those (another sender's 200,000 SMS to the
# phone were each read to find one of the users': 40 ms). When the scan is full by either count, a
# conversation without a sent SMS among those read is not known to have none (it may be older than
# the scan reached): it is taken as before, by when its last mail came.
# The window counts from when the SMS went, and an SMS goes at most its validity after its mail was
# accepted (held for quiet hours, queued through an outage): conversations are looked for this much
# further back than the window by their mail, then judged by when their SMS went.
HOLD_SECONDS = MAX_VALIDITY_HOURS * 3600.0
SCAN_LIMIT = 500
WALK_LIMIT = 5 * SCAN_LIMIT
# No phone answers an SMS within seconds of its going: it must be delivered, read and typed. An answer
# that comes sooner after an SMS's part was handed to its link is to an older SMS, and waiting for the
# newer one gave it to that SMS's user, of whatever company (`unanswered`). By its hand-off
# (`inflight.may_have_since`), neither when it was due nor when it was claimed: one claimed late behind an
# outage went long after it was due, and one claimed ahead of a full window seconds after its claim.
REPLY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Sent:
    """One SMS to the phone, and when its first part to reach an SMSC went (None: none did)."""

    user_email: str
    source: str
    text: str
    created_at: float
    sent_at: float | None
    header_message_id: str | None
    subject: str | None
    account_id: int | None  # of its mail: the account the answer to it is traffic of
    user_id: int | None  # of its mail (`emails.user_id`): None once that user was removed
    message_id: int  # its row (`messages.id`): what an answer to it records (`mo.answered_message_id`)
    # Whether a part of it may wait for the SMSC's answer to its submit (`UNANSWERED`): its claim time (the
    # due time, claimed before migration 69); None when none may. What counts is `inflight`'s.
    unanswered: float | None = None


# A part whose submit the SMSC has not answered: claimed (`active`), or waiting to go again after its
# submit went unanswered (a lost session, a time-out, a crash: a maybe-sent note) with that submit's claim
# known. Only whether an SMS has one, read by the scans that ask (`messages_to`'s `in_flight`): most SMS
# have none, and only the answer wait asks since when the phone may have it, of those that have
# (`inflight.may_have_since`). Binds `MAYBE_SENT_NOTES`.
UNANSWERED = (
    "(SELECT MIN(COALESCE(p.claimed_at, p.next_attempt_at)) FROM parts p"
    " WHERE p.message_id = m.id AND (p.state = 'active'"
    f" OR (p.state IN ('queued', 'deferred') AND p.claimed_at NOTNULL AND {maybe_sent_note('p.error')})))"
)
# A `Sent`'s columns of `messages m` and its mail `emails e`, its `unanswered` NULL; the one parameter
# bounds when it went. `SENT_FLYING` reads `UNANSWERED` instead, `MAYBE_SENT_NOTES` bound after it.
SENT = (
    "e.mail_from, m.source, m.text, m.created_at,"
    f" (SELECT MAX(p.submitted_at) FROM parts p WHERE p.message_id = m.id AND p.state IN {_REACHED}"
    "  AND p.submitted_at <= ?),"
    " e.header_message_id, e.subject, e.account_id, e.user_id, m.id, NULL"
)
SENT_FLYING = SENT.removesuffix("NULL") + UNANSWERED


@dataclass(frozen=True, slots=True)
class Scan:
    """What `messages_to` read: the SMS, newest first, and whether it stopped before the window's
    start (`full`), so that an SMS of the users not among them may still be in the window."""

    sent: list[Sent]
    full: bool


def messages_to(
    conn: sqlite3.Connection,
    phone: str,
    since: float,
    until: float,
    users: Sequence[str],
    *,
    in_flight: bool = False,
) -> Scan:
    """The SMS `users` sent the phone within [since, until], newest first, with when each went, if
    it did. Only theirs: an alerting system's thousands to the same phone would fill the scan.
    `in_flight`: with `Sent.unanswered`, a look more at each one's parts, which only the answer wait reads.

    A long SMS counts from its latest part to go (any part sent means the phone got some of it).
    """
    # Past the newest WALK_LIMIT SMS of anyone to the phone, none is read: the bound is found on the
    # index alone, then only the SMS from it on are read, each with its mail's sender.
    floor = conn.execute(
        "SELECT created_at FROM messages INDEXED BY messages_recipient"
        " WHERE recipient = ? AND created_at >= ? AND created_at <= ?"
        " ORDER BY created_at DESC LIMIT 1 OFFSET ?",
        (phone, since, until, WALK_LIMIT - 1),
    ).fetchone()
    marks, low = ",".join("?" * len(users)), floor[0] if floor else since
    columns, notes = (SENT_FLYING, MAYBE_SENT_NOTES) if in_flight else (SENT, ())
    rows = conn.execute(
        f"SELECT {columns} FROM messages m INDEXED BY messages_recipient JOIN emails e ON e.id = m.email_id"
        f" WHERE m.recipient = ? AND m.created_at >= ? AND m.created_at <= ?"
        f" AND e.mail_from COLLATE NOCASE IN ({marks})"
        " ORDER BY m.created_at DESC LIMIT ?",
        (until, *notes, phone, low, until, *users, SCAN_LIMIT),
    ).fetchall()
    return Scan([Sent(*r) for r in rows], floor is not None or len(rows) >= SCAN_LIMIT)


def last_reached(c: Conversation, since: float, scan: Scan, region: str) -> Sent | bool | None:
    """The conversation's latest SMS that reached an SMSC; False when its SMS are known and none
    did; None when that is not known (its SMS purged, or the scan full before it found one that
    went): as before, its last mail is then taken to have gone. `scan` is what `messages_to` read.

    Only the user's SMS sent from the conversation's number, accepted at most `HOLD_SECONDS`
    before its window began, count: an SMS from another number (a pool number taken back) is
    another conversation for the phone. Whether the one found went within the window is the caller's.
    """
    user = c.user_email.casefold()
    own = [
        s
        for s in scan.sent
        if s.created_at >= since - HOLD_SECONDS
        and s.user_email.casefold() == user
        and normalise(s.source, region) == c.number
    ]
    went = [s for s in own if s.sent_at is not None]
    if went:
        return max(went, key=lambda s: (s.sent_at, s.created_at))
    # A full scan (`messages_to` stops at SCAN_LIMIT or WALK_LIMIT) may end before the SMS of this one
    # that went: "none went" then would hand its answer to a colleague whose SMS the scan did not
    # reach at all.
    return False if own and not scan.full else None


def unanswered(
    conn: sqlite3.Connection,
    live: Sequence[tuple[Conversation, float]],
    scan: Scan,
    at: float,
    region: str,
    wait: float,
    handed: Handoffs | None,
) -> Sent | None:
    """The newest SMS to the phone from the conversations' number, accepted before the answer came, with
    a part handed to a link before then whose submit the SMSC has not answered yet: the answer waits
    for that (`waiting`). An SMSC that answers a submit seconds late delivers the phone's answer to it
    meanwhile (as a receipt may overtake the answer): matched then, that SMS did not count as sent,
    and the answer went to whoever texted the phone before, of whatever company. Counted as sent,
    one the SMSC then refused, or that a throttle handed back, would take the answer to that SMS.

    A part handed after the answer came, or less than `REPLY_SECONDS` before it, was too recent to be
    read and answered: the phone cannot have answered it; nor one claimed and not handed yet. Nor is one
    that waits to go again longer than `wait` after its last submit, behind its link down
    (`inflight.may_have_since`, with `handed`, the dispatcher's hand-offs)."""
    if not live:
        return None
    number = live[0][0].number
    latest = at - REPLY_SECONDS
    maybe = [
        s
        for s in scan.sent
        # Its claim is no later than its hand-off: one claimed since handed no part before.
        if s.unanswered is not None
        and s.unanswered <= latest
        and s.created_at <= at
        and normalise(s.source, region) == number
    ]
    for s in sorted(maybe, key=lambda s: (s.created_at, s.message_id), reverse=True):
        since = inflight.may_have_since(conn, s.message_id, at, wait, handed)
        if since is not None and since <= latest:
            return replace(s, unanswered=since)
    return None


def awaited_went(conn: sqlite3.Connection, scan: Scan, message_id: int, at: float) -> Scan:
    """The scan with the SMS an answer waited for (`unanswered`) counted as sent when the answer came,
    if the SMSC took a part of it since: the answer waited for it only with a part handed to its link
    before the answer came, or one an earlier submit of which may have reached the phone then
    (`inflight`); an SMS taken after the phone answered it went no later than the phone's answer.
    Not taken (refused, expired, still unanswered past the wait): the scan as it was."""
    found = conn.execute(
        f"SELECT 1 FROM parts WHERE message_id = ? AND state IN {_REACHED} LIMIT 1", (message_id,)
    ).fetchone()
    if found is None:
        return scan
    sent = [
        replace(s, sent_at=max(s.sent_at or at, at)) if s.message_id == message_id else s for s in scan.sent
    ]
    return Scan(sent, scan.full)


def answer_of(
    conn: sqlite3.Connection,
    phone: str,
    number: str,
    at: float,
    window: float,
    region: str,
    *,
    wait: float | None = None,
    awaited: int | None = None,
    handed: Handoffs | None = None,
    unread: bool = True,
) -> Conversation | Sent | None:
    """The conversation (phone, our number) whose SMS last reached the phone before `at`, when
    the answer came, within its window counted from when that SMS went (`answered`): an SMS
    accepted but never sent (held, cancelled, expired, refused) answers nothing, nor does one sent
    after the answer.

    `window` (seconds) applies to conversations whose account sets no reply window of its own;
    `region` reads the numbers SMS were sent from as the conversations store them.

    Read back to the widest window of the accounts of its rows, each with its own window's start: a
    conversation whose account's window is short and closed may still have the SMS the phone got
    last, which then displaced the others (`answered`). Read back only to each one's own window,
    another company's older SMS, in a longer window, took the answer as if never displaced.

    `wait`, the longest an answer waits (`waiting.wait_seconds`): an SMS to the phone from the number
    whose submit the SMSC has not answered yet, which the answer may be to, is returned instead
    (`unanswered`): the answer waits for it (`waiting`). None: none is waited for. `handed`: when the
    running dispatcher handed each part to its link (`gateway.handoffs`; None: none runs here).
    `awaited`: such an SMS (its `messages.id`) waited for, counted as sent when the answer came if the
    SMSC took it since (`awaited_went`). `unread`: an SMS that went within `REPLY_SECONDS` before `at`
    is not yet read when an older one had reached the phone (`recent.read_late`); the list of
    conversations, which asks whom an answer goes to once a new SMS could be read, counts it (False).
    """
    sql = f"SELECT {COLUMNS}, {SINCE} FROM conversations WHERE phone = ? AND number = ? AND {WIDEST}"
    # Its SMS may have gone up to its validity after its mail came: judged by that (`answered`).
    reach = at - HOLD_SECONDS
    live = [
        (Conversation(*r[:-1]), float(r[-1]))
        for r in conn.execute(sql, (at, window, phone, number, reach, window, phone, number))
    ]
    if not live:
        return None
    users = sorted({c.user_email for c, _ in live})
    start = min(since for _, since in live) - HOLD_SECONDS
    flying = wait is not None and awaited is None  # only `unanswered` reads it
    sent = messages_to(conn, phone, start, at, users, in_flight=flying)
    if stepped_back(live, sent, at):  # the clock stepped back: all counts, to the end
        sent = messages_to(conn, phone, start, float("inf"), users, in_flight=flying)
    elif unread:  # an SMS that went just before the answer is not what it answers (after a step, all are)
        sent = recent.read_late(conn, sent, at, number, region, handed)
    if awaited is not None:
        sent = awaited_went(conn, sent, awaited, at)
    elif wait is not None and (waited := unanswered(conn, live, sent, at, region, wait, handed)) is not None:
        return waited
    return answered(live, sent, at, region)


def stepped_back(live: Sequence[tuple[Conversation, float]], scan: Scan, at: float) -> bool:
    """Whether the clock stepped back since the rows of `live` (as `answered` takes them) were written:
    nothing of theirs accepted before the answer by the clock, nor any row. Then `match` reads their SMS
    to the end, not only to the answer. Not by the rows alone: they move on with every mail, and a long
    answer is matched when joined, a timeout after its first part came; the user's next SMS, sent in
    between, was taken as the one answered (another company's user, or the address's successor, got the
    answer to the old SMS, on their account).

    Of the rows within their own window's reach only (`LIVE`, as `answered`'s last resort): another's SMS
    long past its window, read for the widest window, kept the read short, and the answer racing the
    user's SMS went to the fallback address. None within reach: nothing to read further for."""
    near = [(c, since - HOLD_SECONDS) for c, since in live if c.last_mt_at >= since - HOLD_SECONDS]
    if not near or any(c.last_mt_at <= at for c, _ in near):
        return False
    mine = {c.user_email.casefold() for c, _ in near}
    floor = min(reach for _, reach in near)
    return not any(s.user_email.casefold() in mine and s.created_at >= floor for s in scan.sent)


def answered(
    live: Sequence[tuple[Conversation, float]], scan: Scan, at: float, region: str
) -> Conversation | None:
    """The conversation an answer that came at `at` answers, quoting the SMS the phone got.

    `live`: the conversations of (phone, number) whose mail came within their windows or up to
    `HOLD_SECONDS` before, with each window's start. The window counts from when the SMS went
    (R-3: answers within 7 days of the SMS): one held for quiet hours or an outage went later than
    its mail came. The latest SMS to reach the phone within its window wins; a conversation none
    of whose SMS is known any more counts as of its last mail, in its window by that. Only when no
    SMS of any of them went, nor went before its window, is one taken whose SMS never left (the
    newest by its mail, as before): there is nobody else the phone can mean (an answer racing the
    write that records its SMS as submitted, or a part a crash caught mid-submit).

    `live` may hold conversations past their windows too (accounts' windows differ): one whose SMS
    went later than the best live one's displaced it, and the answer, most likely to that SMS, goes
    to the fallback address (None), as with equal windows. Taken, another company's older SMS in a
    longer window got the answer, quoted and billed as if never displaced. So does one whose later
    SMS never went (cancelled, expired): its latest SMS that did go counts, however old.
    """
    best: tuple[float, int, Conversation] | None = None
    unsent: list[Conversation] = []
    later: list[Conversation] = []
    # When the latest SMS that reached the phone (or may have) before its window went, if any did, of
    # all rows: one that went after the best live one's displaced it.
    passed: float | None = None
    # Whether such an SMS is of a row whose mail came within its own window's reach (`LIVE`): only those
    # say the phone got an SMS whose window closed when no row is answered. Rows read back only for
    # the widest window are long over; taken, an answer racing the write of its SMS as submitted (or
    # after a clock stepped back) went to the fallback address, not to the user whose SMS it got.
    near = False
    for c, since in live:
        last = last_reached(c, since, scan, region)
        reach = c.last_mt_at >= since - HOLD_SECONDS
        if last is False:
            # None of its SMS from its window's reach on went (cancelled, expired, refused, or not yet):
            # an older one that did may still have gone after another conversation's SMS, displacing it.
            # Skipped, another company's SMS the phone got before it took the answer, on its bill.
            older = last_reached(c, float("-inf"), scan, region)
            if isinstance(older, Sent) and older.sent_at is not None:
                passed = max(passed or older.sent_at, older.sent_at)
        if last is None or last is False:
            if c.last_mt_at < since:  # nothing known to have gone since: judged by its mail
                if last is None:
                    passed = max(passed or c.last_mt_at, c.last_mt_at)
                    near = near or reach
                continue
        elif last.sent_at is not None and last.sent_at < since:  # its SMS went before the window
            passed = max(passed or last.sent_at, last.sent_at)
            near = near or reach
            continue
        if last is False:
            unsent.append(c)
            continue
        if last is None:
            if c.last_mt_at > at:  # its mail came after the answer: it answers nothing of it
                later.append(c)
                continue
            key, conv = c.last_mt_at, c
        else:
            assert isinstance(last, Sent) and last.sent_at is not None
            key, conv = last.sent_at, quoting(c, last)
        if best is None or (key, c.id) > best[:2]:
            best = (key, c.id, conv)
    if best is not None:
        return None if passed is not None and passed > best[0] else best[2]
    if near:
        # The phone got an SMS whose window has closed: that is what it answers (R-3.3, the fallback
        # address), not a colleague's or another company's SMS it never got (held for quiet hours,
        # queued behind an outage), whose user would read an answer to a text they never sent it.
        return None
    # Only when none came before (a clock stepped back meanwhile) is a later one taken.
    before = [c for c in unsent if c.last_mt_at <= at] or unsent + later
    return max(before, key=lambda c: (c.last_mt_at, c.id), default=None)


def quoting(c: Conversation, s: Sent) -> Conversation:
    """The conversation as the reply mail shows it: the SMS the phone got quoted, the mail it came
    in answered (the thread of a later mail whose SMS never went is not this answer's), and that
    mail's account and user. The row holds those of the latest mail accepted: the address given to
    a successor, or its user moved to another company, and their SMS held, the answer to the old SMS
    went to the new holder, on the new account's bill (`repo.gone` judges by these)."""
    sent_by = s.user_id or 0
    if s.header_message_id == c.header_message_id and s.text == c.text:
        return replace(c, account_id=s.account_id, sent_by=sent_by, message_id=s.message_id)
    subject = s.subject
    if subject and (topic := forwarded.cut_topic(subject)) is not None:
        # The mail was a Reply to one of our reply mails, "RE: Re: <topic cut> (SMS from …)": its
        # topic whole is the conversation's, as `on_accept` keeps it (a cut Thread-Topic starts a new
        # thread in Outlook), unless the conversation has moved on to another topic since.
        if c.subject and forwarded.reply_topic(c.subject).startswith(topic):
            subject = c.subject
    return replace(
        c,
        text=s.text,
        last_mt_at=s.created_at,
        header_message_id=s.header_message_id,
        subject=subject,
        refs=None,
        account_id=s.account_id,
        sent_by=sent_by,
        message_id=s.message_id,
    )
