"""The accepting half of the queue repository: one email's rows, with its dedup and concat references.

`QueueRepo` (gateway/store/queue.py) builds on it; kept apart so each module stays readable.
"""

from __future__ import annotations

from gateway.store.idfloors import next_id
from gateway.store.records import Acceptance, AcceptResult
from gateway.store.repository import Repository
from smsc.makers import maker

# AcceptResult(email_id, message_ids, duplicates, refused) without its frozen __init__ (`smsc.makers`):
# one an accepted mail.
_result = maker(AcceptResult)
# A message's row; `_MESSAGE` for one, made once (not joined and hashed anew at every mail).
_MESSAGES = (
    "INSERT INTO messages (email_id, account_id, recipient, source, text, coding, parts_total,"
    " concat_ref, state, created_at, expires_at, dedup_key, rcpt, bulk, notify, orcpt) VALUES "
)
_ONE = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_MESSAGE = _MESSAGES + _ONE
# The first after a restore, by its id (`gateway.store.idfloors`).
_BY_ID = _MESSAGES.replace("(email_id,", "(id, email_id,", 1) + "(?," + _ONE[1:]
# how long after a copy another delivery of the same mail is its retry. A mail server resends
# a mail whose 250 it did not hear only while the mail is in its queue: 5 days at most by default
# (Postfix's maximal_queue_lifetime, Sendmail's Timeout.queuereturn; Exim's retry rules give up
# after 4, Exchange after 2). Two days more for a lifetime raised or a mail program's outbox left
# over a weekend. Without a bound, the key of a mail without a Message-ID (a relaying server's queue
# id, which repeats) and a device's fixed Message-ID dropped a new alert for as long as mails are kept.
RETRY_WINDOW_SECONDS = 7 * 86400.0
# A key that names a mail by its Message-ID alone, the mail saying nothing of when it was written (no
# Date:, or one no clock wrote) and no relaying server's queue entry beside it (`mailidentity`): a
# device mailing the relay port straight, with one fixed Message-ID, had each new alert of the same
# words dropped as the first one's retry for the whole window. Such a key holds for a client's own
# retries after a lost 250 alone: it waits up to 10 minutes for the reply to its final dot (RFC 5321
# 4.5.3.2.6), then tries again after its retry interval, which "SHOULD be at least 30 minutes"
# (4.5.4.1): 75 minutes take the first two such retries (at 15 a queueing device's first, at some
# 40 minutes, was sent again as an SMS). The price: the same alert again within 75 minutes of the
# first (a UPS on battery twice in an hour) is taken for its retry and sent once; later it is a new
# mail. A step forward of the wall clock between copy and retry counts as time passed: within this
# window a step of half an hour still leaves a retry at 40 minutes merged. Marked by its first
# characters, so that every lookup of a key bounds it alike (a hex digest has no ":").
SHORT_RETRY_WINDOW_SECONDS = 75 * 60.0
SHORT_KEY_MARK = "short:"
# The recipients an earlier copy reached within the window: one range of `messages_dedup`.
_REACHED = "SELECT recipient FROM messages WHERE dedup_key = ? AND created_at >= ?"
# An earlier copy of a machine mail: its predicate is the one a partial index of the key can hold.
_RECORDED = "SELECT 1 FROM emails WHERE dedup_key = ? AND automatic IS NOT NULL AND received_at >= ? LIMIT 1"


def retry_window(dedup_key: str) -> float:
    """How long after a copy with this key another delivery is its retry (R-1.8)."""
    return SHORT_RETRY_WINDOW_SECONDS if dedup_key.startswith(SHORT_KEY_MARK) else RETRY_WINDOW_SECONDS


class AcceptingRepo(Repository):
    def reached_before(self, dedup_key: str | None) -> set[str]:
        """The recipients an earlier copy of this mail (same dedup key) was accepted for, within
        `retry_window`: a copy older than that is no retry's, and this one is a new mail."""
        if dedup_key is None:
            return set()
        rows = self.conn.execute(_REACHED, (dedup_key, self.clock() - retry_window(dedup_key)))
        return {r[0] for r in rows}

    def recorded_before(self, dedup_key: str | None) -> bool:
        """Whether an earlier copy of this machine mail (same dedup key) was recorded. Machine mail
        has no messages, so `reached_before` cannot tell; its email row keeps the key (indexed).

        Within `retry_window`, as `reached_before`. Only machine mail asks, and only its rows
        are looked at (`automatic IS NOT NULL`): so the key's index may hold those rows alone, a
        partial index SQLite takes only for a statement that names its predicate. Indexed for every
        mail, its random key costs a WAL page a mail."""
        if dedup_key is None:
            return False
        row = self.conn.execute(_RECORDED, (dedup_key, self.clock() - retry_window(dedup_key))).fetchone()
        return row is not None

    def insert_email(
        self, a: Acceptance, *, reached: set[str] | None = None, now: float | None = None
    ) -> AcceptResult:
        """Write one email, its messages and parts, skipping recipients it reached before (dedup).

        Returns no email id when every recipient was a duplicate. Call inside the acceptance's
        transaction: the policy check before it and the usage after it must see the same rows.
        `reached` is `reached_before(a.dedup_key)` when the caller read it already in this transaction;
        `now` the clock it read there, so that its usage is counted in the month the rows are billed in.
        """
        now = self.clock() if now is None else now
        todo = a.messages
        duplicates = 0
        if a.dedup_key is not None and todo:
            seen = self.reached_before(a.dedup_key) if reached is None else reached
            duplicates = sum(1 for m in todo if m.recipient in seen)
            todo = [m for m in todo if m.recipient not in seen]
            if not todo and a.messages:
                return AcceptResult(None, [], duplicates=duplicates)
        cur = self.conn.execute(
            "INSERT INTO emails (account_id, user_id, mail_from, envelope, client_ip, header_message_id,"
            " dedup_key, subject, text, automatic, removed, received_at, dsn_ret, envid, numbers)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                a.account_id,
                a.user_id,
                a.mail_from,
                a.envelope,
                a.client_ip,
                a.header_message_id,
                a.dedup_key,
                a.subject,
                a.text,
                a.automatic,
                a.removed,
                now,
                a.dsn_ret,
                a.envid,
                a.numbers,
            ),
        )
        email_id = cur.lastrowid
        assert email_id is not None
        rows, parts = [], []
        for m in todo:
            start = max(now, m.not_before or now)
            expires = start + a.validity_seconds
            if a.valid_until is not None:  # the mail's own expiry: never later
                expires = min(expires, a.valid_until)
            ref = self.next_concat_ref(m.recipient) if m.concatenated else None
            rows.append(
                (
                    *(email_id, a.account_id, m.recipient, m.source, m.text, m.coding, len(m.parts), ref),
                    *(m.state, now, expires, a.dedup_key, m.rcpt, int(m.bulk), m.notify, m.orcpt),
                )
            )
            part_state = "queued" if m.state == "queued" else m.state
            parts.append(
                [
                    (
                        a.account_id,
                        p.seq,
                        part_state,
                        start,
                        expires,
                        m.recipient,
                        m.source,
                        p.data_coding,
                        p.payload,
                        concat_udh(ref, len(m.parts), p.seq) if ref is not None else p.udh,
                        p.text,
                        m.via,
                    )
                    for p in m.parts
                ]
            )
        ids = self._insert_messages(rows)
        self.conn.executemany(
            "INSERT INTO parts (message_id, account_id, seq, state, next_attempt_at, expires_at, destination,"
            " source, data_coding, payload, udh, text, via) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(mid, *part) for mid, message_parts in zip(ids, parts, strict=True) for part in message_parts],
        )
        return _result(email_id, ids, duplicates, None)

    def _insert_messages(self, rows: list[tuple[object, ...]]) -> list[int]:
        """Insert message rows, in one statement when their recipients tell the new ids apart;
        returns the ids in the order of `rows`. The RCPT address is a column of the same rows, not a
        statement of its own: each statement per mail costs the event loop that accepts every mail.
        The first row after a restore takes the id after those the database replaced gave."""
        if rows and (first := next_id(self.db, self.conn, "messages")) is not None:
            self.conn.execute(_BY_ID, (first, *rows[0]))
            return [first, *self._insert_rows(rows[1:])]
        return self._insert_rows(rows)

    def _insert_rows(self, rows: list[tuple[object, ...]]) -> list[int]:
        sql, one = _MESSAGES, _ONE
        recipients = [row[2] for row in rows]
        if len(rows) > 1 and len(set(recipients)) == len(rows):
            # RETURNING gives no promise about order: the recipient tells which id is whose.
            returned = self.conn.execute(
                sql + ", ".join([one] * len(rows)) + " RETURNING id, recipient",
                [value for row in rows for value in row],
            ).fetchall()
            by_recipient = {recipient: mid for mid, recipient in returned}
            return [by_recipient[r] for r in recipients]
        ids = []
        for row in rows:
            mid = self.conn.execute(_MESSAGE, row).lastrowid
            assert mid is not None
            ids.append(mid)
        return ids

    def next_concat_ref(self, destination: str) -> int:
        """A reference unique per destination (rotating), so a phone never mixes two long texts."""
        row = self.conn.execute(
            "INSERT INTO concat_refs (destination, next_ref) VALUES (?, 1)"
            " ON CONFLICT(destination) DO UPDATE SET next_ref = (next_ref + 1) % 256"
            " RETURNING next_ref",
            (destination,),
        ).fetchone()
        return int(row[0])


def concat_udh(ref: int, total: int, seq: int) -> bytes:
    """The 8-bit reference concatenation header (IEI 0, protocols.md) of part `seq` of `total`."""
    return bytes((5, 0, 3, ref & 0xFF, total, seq))
