"""The policy repository: rows behind the abuse rules and the audit trail (SPEC R-2.4).

Opt-outs, identical-text counting, failure shares for automatic suspension and limit notices. The
retention purge (R-2.5) lives in `gateway.store.retention`.
"""

from __future__ import annotations

from typing import Any

from gateway.store import failureshare
from gateway.store.cache import OPTOUTS_IN_MEMORY
from gateway.store.partnotes import MAYBE_SENT_NOTES, maybe_sent_note
from gateway.store.queueage import parked
from gateway.store.repository import Repository

# The note on a part the account's suspension holds: resuming releases exactly these (an admin's
# own hold, "held by admin", stays).
SUSPENDED_HOLD = "held: the account is suspended"
_UNFINISHED = "state NOT IN ('delivered', 'failed', 'expired', 'cancelled')"
# A part the SMSC may already have (waiting for its late answer, cut off by a lost link or a crash)
# keeps its state and note under a suspension: held, its late answer would be ignored and the
# resume would send it a second time. The same goes for one an admin sent again after such a note
# (`RETRIED_MAYBE_SENT`): the resume's `error = NULL` would forget it, and its re-send would go out
# unlogged. One predicate for the waiting parts and the claimed ones.
_MAY_HOLD_ARGS = MAYBE_SENT_NOTES


def _may_hold(error: str = "error") -> str:
    """The predicate, on the parts' note column `error`, with `_MAY_HOLD_ARGS` for its marks."""
    return f"({error} IS NULL OR NOT {maybe_sent_note(error)})"


# A failed or expired message, on `messages m`, that an SMSC took or may have taken though none of
# its parts has a submit time (bind `MAYBE_SENT_NOTES` for its marks): a part's SMSC id kept through
# an admin's retry that was then refused, or a note that its unanswered submit may have reached the
# phone. A part with a submit time is counted by that time instead (`PolicyRepo.identical_count`).
_TAKEN_UNTIMED = (
    "(m.state = 'failed' OR m.state = 'expired')"
    " AND NOT EXISTS (SELECT 1 FROM parts p WHERE p.message_id = m.id AND p.submitted_at IS NOT NULL)"
    " AND EXISTS (SELECT 1 FROM parts p WHERE p.message_id = m.id"
    f" AND (p.smsc_id IS NOT NULL OR {maybe_sent_note('p.error')}))"
)

# The id of the oldest message still waiting to go (queued, or held: for quiet hours, a suspension,
# an admin), each state's a seek in `messages_state` (its rowid follows the state); past every id
# when none waits.
_OLDEST_WAITING = (
    "MIN(IFNULL((SELECT MIN(id) FROM messages WHERE state = 'queued'), 9223372036854775807),"
    " IFNULL((SELECT MIN(id) FROM messages WHERE state = 'hold'), 9223372036854775807))"
)

# Ids per statement when the dispatcher asks about its claimed parts (SQLite's variable limit).
_CHUNK = 500

# `PolicyRepo.identical_count`'s statement, run for every mail: one string made once, so that each
# execution neither builds its 1,200 characters again nor hashes them for the statement cache.
_IDENTICAL_COUNT = (
    "SELECT COUNT(*) + (SELECT COUNT(*) FROM messages INDEXED BY messages_recipient_id"
    f" WHERE recipient = ? AND id >= {_OLDEST_WAITING} AND text IN (?, ?)"
    " AND (state = 'queued' OR state = 'hold'))"
    " + (SELECT COUNT(*) FROM parts s INDEXED BY parts_sent JOIN messages g ON g.id = s.message_id"
    " WHERE s.destination = ? AND s.submitted_at >= ? AND g.text IN (?, ?)"
    " AND g.state <> 'queued' AND g.state <> 'hold' AND g.state <> 'cancelled'"
    " AND (g.parts_total = 1 OR NOT EXISTS (SELECT 1 FROM parts o WHERE o.message_id = s.message_id"
    " AND o.submitted_at >= ? AND o.id < s.id)))"
    " FROM messages m INDEXED BY messages_recipient WHERE recipient = ? AND created_at >= ?"
    f" AND text IN (?, ?) AND {_TAKEN_UNTIMED}"
)


# What `add_optout` did: listed the number, made the phone's own entry an admin's, or nothing.
ADDED = "added"
MADE_ADMINS = "made the admin's"
LISTED = "listed already"


class PolicyRepo(Repository):
    def add_optout(self, number: str, *, word: str | None, source: str) -> str:
        """Lists the number (`ADDED`). An admin's add on an entry the phone's own opt-out word made
        makes it the admin's (`MADE_ADMINS`, the phone's word and time kept; its next STOP moves the
        time as below): left the phone's, its START took it off the list again though the admin had
        decided, perhaps at the owner's written request.

        The phone's opt-out word on a number listed already (`LISTED`) moves the entry's time to now,
        its word and source kept: a premium answer or claim is withdrawn by a STOP since the vote it
        answers (`opted_out_since`, R-4.5), and a phone listed before it voted that said STOP again
        after the vote still got the answer, its entry keeping the first STOP's time. The time the
        panel and `optout list` show is thus the phone's latest STOP. Such a move leaves the settings
        generation alone (the table's update trigger fires on the number only, migration 78): the
        numbers every process holds did not change, and this one's are kept (a reload each STOP)."""
        with self.transaction():
            now = self.clock()
            cur = self.conn.execute(
                "INSERT INTO optouts (number, word, source, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (number, word, source, now),
            )
            done = ADDED if cur.rowcount == 1 else LISTED
            if done == LISTED and source == "mo":  # never earlier: a clock stepped back does not move it back
                self.conn.execute(
                    "UPDATE optouts SET created_at = ? WHERE number = ? AND created_at < ?",
                    (now, number, now),
                )
            if done == LISTED and source == "admin":
                cur = self.conn.execute(
                    "UPDATE optouts SET source = 'admin' WHERE number = ? AND source = 'mo'", (number,)
                )
                done = MADE_ADMINS if cur.rowcount == 1 else LISTED
        if done != LISTED:  # added: the next lookup reads the new row alone (migration 79); else all
            (self.db.settings.optout_added if done == ADDED else self.db.settings.invalidate)()
        return done

    def remove_optout(self, number: str) -> bool:
        with self.changing_settings():
            return self.conn.execute("DELETE FROM optouts WHERE number = ?", (number,)).rowcount == 1

    def opt_back_in(self, number: str) -> str | None:
        """An opt-in word from the phone: the entry its own opt-out word made is removed, one an admin
        made stays (the phone cannot undo what the operator decided, perhaps at the owner's written
        request). Returns the entry's source ("mo" when removed), None when the number is not listed."""
        if not self.is_opted_out(number):
            return None  # the common case, from the cached list: no write, no cache dropped
        with self.changing_settings():
            row = self.conn.execute("SELECT source FROM optouts WHERE number = ?", (number,)).fetchone()
            if row is None:
                return None
            if row[0] == "mo":
                self.conn.execute("DELETE FROM optouts WHERE number = ? AND source = 'mo'", (number,))
        return str(row[0])

    def is_opted_out(self, number: str) -> bool:
        numbers = self.db.settings.optouts()
        if numbers is not None:
            return number in numbers
        return self.conn.execute("SELECT 1 FROM optouts WHERE number = ?", (number,)).fetchone() is not None

    def opted_out_since(self, number: str, since: float) -> bool:
        """An opt-out made at or after `since`. A premium answer is the reply to an SMS the phone
        paid for after any older STOP; only a STOP sent since that SMS withdraws it (R-4.5)."""
        numbers = self.db.settings.optouts()
        if numbers is not None and number not in numbers:
            return False  # the common case: nothing to read
        row = self.conn.execute(
            "SELECT 1 FROM optouts WHERE number = ? AND created_at >= ?", (number, since)
        ).fetchone()
        return row is not None

    def add_account_optout(self, account_id: int, number: str) -> bool:
        """A company admin's opt-out: only their account's SMS to the number stop. On the shared
        list, an admin of one company could stop every other company's SMS to the number for good
        (an admin's entry, which the phone's START leaves). True when it was not listed already."""
        with self.changing_settings():
            cur = self.conn.execute(
                "INSERT INTO account_optouts (account_id, number, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (account_id, number, self.clock()),
            )
            # The accepting write reads the account's list from the settings cache (a session past
            # RCPT when it was added): the table has no trigger of its own, so bump the generation.
            self.conn.execute("UPDATE settings_generation SET value = random()")
        return cur.rowcount == 1

    def remove_account_optout(self, account_id: int, number: str) -> bool:
        with self.changing_settings():
            cur = self.conn.execute(
                "DELETE FROM account_optouts WHERE account_id = ? AND number = ?", (account_id, number)
            )
            self.conn.execute("UPDATE settings_generation SET value = random()")
        return cur.rowcount == 1

    def accounts_listing(self, number: str) -> str:
        """What a phone's START leaves in place beyond the shared list, for the mail that tells it:
        "" or a clause. Accounts' own entries (migration 59) stay: the note said "SMS to it are sent
        as before" while that account's SMS were still refused. Which account stays unsaid."""
        row = self.conn.execute(
            "SELECT 1 FROM account_optouts WHERE number = ? LIMIT 1", (number,)
        ).fetchone()
        return "" if row is None else " (except where an account's admin listed it on their panel page)"

    def optout_by(self, number: str, account_id: int | None) -> list[str]:
        """Who keeps SMS from this account (None: no account's) from the number: "mo" (the phone's
        STOP) or "admin" (the operator's) on the shared list, then "account" (this account's admin).
        Empty: nobody. Both lists from the settings cache (a list too long to hold: by index)."""
        by: list[str] = []
        if self.is_opted_out(number):
            row = self.conn.execute("SELECT source FROM optouts WHERE number = ?", (number,)).fetchone()
            by += [str(row[0])] if row else []
        if account_id is not None:
            own = self.account_optouts(account_id)
            if own is None:
                row = self.conn.execute(
                    "SELECT 1 FROM account_optouts WHERE account_id = ? AND number = ?", (account_id, number)
                ).fetchone()
                by += ["account"] if row else []
            elif number in own:
                by.append("account")
        return by

    def account_optouts(self, account_id: int) -> frozenset[str] | None:
        """The account's own list from the settings cache (its writes bump the generation), None when
        too long to hold (ask per number): RCPT read it by a statement a number."""

        def load() -> frozenset[str] | None:
            rows = self.conn.execute(
                "SELECT number FROM account_optouts WHERE account_id = ? LIMIT ?",
                (account_id, OPTOUTS_IN_MEMORY + 1),
            )
            numbers = frozenset(r[0] for r in rows)
            return numbers if len(numbers) <= OPTOUTS_IN_MEMORY else None

        result: frozenset[str] | None = self.db.settings.get("account optouts", account_id, load)
        return result

    def list_optouts(self) -> list[dict[str, Any]]:
        cur = self.conn.execute("SELECT number, word, source, created_at FROM optouts ORDER BY created_at")
        return [dict(zip(("number", "word", "source", "created_at"), r, strict=True)) for r in cur]

    def identical_count(self, number: str, text: str, since: float, also: str | None = None) -> int:
        """SMS with this exact text (or `also`, the same mail's other form) to this number that count
        toward the day starting at `since`: those that reached an SMSC since then, and those still
        waiting to go.

        The rule is the operator's, on what reaches its SMSC in a day, so an SMS counts toward the day
        it reaches (or will reach) it, whatever day its mail came: three held for quiet hours at 23:00
        and three more accepted the next day all went that day, six to one phone, whether the three
        more came at 00:30 (by their mail's day the held ones did not count while they waited) or
        after the 08:00 release (by their mail's day the sent ones counted toward the day before).

        - Waiting to go (held for quiet hours, queued behind an outage or pacing, held by a suspension
          or an admin): toward today, from this number's range of `messages_recipient_id` from the
          oldest message waiting at all (`_OLDEST_WAITING`), a few rows while the queue moves; a
          message held for weeks (an admin's hold, a long validity) makes the range that long.
        - Gone: by when its parts reached an SMSC (a long SMS whose parts went either side of
          midnight counts toward both days), from this number's parts submitted since `since`
          (`parts_sent`, migration 67, which holds their message ids), each with its message read by
          id; a long SMS counts once, by its first part of the day, and one an admin cancelled not
          at all.
        - Failed or expired with a part an SMSC took that has no submit time (`_TAKEN_UNTIMED`): when
          it may have gone is not kept, so its mail's day, from this number's messages accepted
          since `since` (`messages_recipient`), the parts looked up only for those failed or expired.

        An SMS no SMSC took (refused at submit, expired unsent, ended by the phone's STOP) is counted
        in none, or three refused at submit refused the fourth mail as "more than 3 identical SMS"
        when none had left."""
        texts = (text, text if also is None else also)
        return self.conn.execute(
            _IDENTICAL_COUNT,
            (number, *texts, number, since, *texts, since, number, since, *texts, *MAYBE_SENT_NOTES),
        ).fetchone()[0]

    def first_limit_notice(self, scope: str, period: str) -> bool:
        """True only the first time a limit refusal happens in a period (the user is told once)."""
        cur = self.conn.execute(
            "INSERT INTO limit_notices (scope, period, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (scope, period, self.clock()),
        )
        return cur.rowcount == 1

    def failure_share(self, account_id: int, last: int) -> tuple[int, int]:
        """(failed, finished) over the account's last `last` finished messages since its last resume.

        The messages before a resume are what the admin looked at when lifting the suspension:
        counting them again would suspend the account at its next failure (and mail the admin
        again). The bound is a message id, so each read stays a short range of an index
        (`gateway.store.failureshare`, which says what counts and how it is read).
        """
        return failureshare.failure_share(self.conn, account_id, last)

    def suspend_account(self, account_id: int, reason: str, *, new_reason: bool = False) -> int:
        """Stop the account's sending: new mail is refused at SMTP, and every SMS it still has
        waiting (queued, retrying, held for quiet hours) is put on hold in the same transaction,
        or a suspension for spam would let the rest of the campaign go. Parts the dispatcher has
        claimed but not yet handed to a link are held by it (`hold_claimed`) once it sees the
        suspension; parts already handed to a link are not called back. Returns how many messages
        were held.

        An account suspended already keeps its suspension's time and what it held (0 is returned);
        its reason stays too (an automatic suspension must not overwrite an admin's words) unless
        `new_reason` says that `reason` replaces it (an admin's `account suspend --reason`)."""
        with self.changing_settings():
            changed = self.conn.execute(
                "UPDATE accounts SET suspended_at = ?, suspended_reason = ?"
                " WHERE id = ? AND suspended_at IS NULL RETURNING id",
                (self.clock(), reason, account_id),
            ).fetchone()
            if changed is None:
                if new_reason:
                    self.conn.execute(
                        "UPDATE accounts SET suspended_reason = ? WHERE id = ? AND suspended_at IS NOT NULL",
                        (reason, account_id),
                    )
                return 0
            # One waiting for a link (`queueage.parked`) is held due now: due at its validity's end, never
            # tried, it passed for a quiet-hours hold, which a change of the window released with its
            # validity ended (expired unsent) and a clock step left unmoved; and the resume sends it.
            held = {
                mid
                for (mid,) in self.conn.execute(
                    "UPDATE parts SET state = 'hold', error = ?,"
                    f" next_attempt_at = CASE WHEN {parked()} THEN ? ELSE next_attempt_at END"
                    " WHERE state IN ('queued', 'deferred')"
                    f" AND message_id IN (SELECT id FROM messages WHERE account_id = ? AND {_UNFINISHED})"
                    f" AND {_may_hold()} RETURNING message_id",
                    (SUSPENDED_HOLD, self.clock(), account_id, *_MAY_HOLD_ARGS),
                )
            }
            self._set_state(held, "hold", SUSPENDED_HOLD)
        return len(held)

    def suspended_accounts(self) -> frozenset[tuple[int, float]]:
        """(account id, suspended at) of every suspended account, from the settings cache.

        The dispatcher looks at it before each submit: the cache reads the settings generation at
        most once per event-loop turn, so a suspension by the CLI (another process) is seen in the
        next turn and one by this process at once, with no query per part. The time tells a
        suspension lifted and imposed again between two looks from the one before."""
        return self.db.settings.get("suspended accounts", None, self._suspended_accounts)

    def _suspended_accounts(self) -> frozenset[tuple[int, float]]:
        rows = self.conn.execute("SELECT id, suspended_at FROM accounts WHERE suspended_at IS NOT NULL")
        return frozenset((account_id, at) for account_id, at in rows)

    def claimed_of(self, accounts: set[int], part_ids: set[int]) -> set[int]:
        """Which of these claimed parts belong to these accounts and are held by their suspension
        (the same parts `suspend_account` holds when they wait in the queue)."""
        found: set[int] = set()
        ids = list(part_ids)
        marks = ",".join("?" * len(accounts))
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            found.update(
                pid
                for (pid,) in self.conn.execute(
                    "SELECT p.id FROM parts p JOIN messages m ON m.id = p.message_id"
                    f" WHERE p.id IN ({','.join('?' * len(chunk))}) AND p.state = 'active'"
                    f" AND m.account_id IN ({marks}) AND {_may_hold('p.error')}",
                    (*chunk, *accounts, *_MAY_HOLD_ARGS),
                )
            )
        return found

    def hold_claimed(self, part_ids: list[int]) -> set[int]:
        """Hold claimed parts (never sent) of accounts suspended now, as the suspension holds the
        waiting ones, so that the resume releases them; the claim's attempt is undone. A part whose
        account was resumed meanwhile, or that the suspension leaves alone, is not touched: the
        caller puts it back to the queue or sends it. Returns the ids held."""
        held: set[int] = set()
        messages: set[int] = set()
        with self.transaction():
            for start in range(0, len(part_ids), _CHUNK):
                chunk = part_ids[start : start + _CHUNK]
                for pid, mid in self.conn.execute(
                    "UPDATE parts SET state = 'hold', error = ?, attempts = attempts - 1"
                    f" WHERE id IN ({','.join('?' * len(chunk))}) AND state = 'active' AND {_may_hold()}"
                    " AND EXISTS (SELECT 1 FROM messages m JOIN accounts a ON a.id = m.account_id"
                    f" WHERE m.id = parts.message_id AND a.suspended_at IS NOT NULL AND m.{_UNFINISHED})"
                    " RETURNING id, message_id",
                    (SUSPENDED_HOLD, *chunk, *_MAY_HOLD_ARGS),
                ):
                    held.add(pid)
                    messages.add(mid)
            self._set_state(messages, "hold", SUSPENDED_HOLD)
        return held

    def resume_account(self, account_id: int) -> int:
        """Lift a suspension; the failure share starts afresh with the messages accepted from now on.

        Messages accepted before it (some may still fail after it) were part of what the admin
        judged, so only ids above today's highest count (see `failure_share`). What the suspension
        held goes again, each part at its old due time (a quiet-hours hold keeps its hour) within
        its old validity; an admin's own hold stays. Returns how many messages were released.
        """
        with self.changing_settings():
            released = {
                mid
                for (mid,) in self.conn.execute(
                    "UPDATE parts SET state = 'queued', error = NULL"
                    " WHERE state = 'hold' AND error = ?"
                    " AND message_id IN (SELECT id FROM messages WHERE account_id = ?) RETURNING message_id",
                    (SUSPENDED_HOLD, account_id),
                )
            }
            self._set_state(released, "queued", None)
            self.conn.execute(
                "UPDATE accounts SET suspended_at = NULL, suspended_reason = NULL,"
                " resumed_after_message = (SELECT COALESCE(MAX(id), 0) FROM messages) WHERE id = ?",
                (account_id,),
            )
        return len(released)

    def _set_state(self, message_ids: set[int], state: str, reason: str | None) -> None:
        """The held or released messages' own state, unless they moved on meanwhile (all parts sent)."""
        if message_ids:
            self.conn.execute(
                f"UPDATE messages SET state = ?, reason = ? WHERE id IN ({','.join('?' * len(message_ids))})"
                " AND state IN ('queued', 'hold')",
                (state, reason, *message_ids),
            )
