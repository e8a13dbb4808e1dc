"""Migrations 2 to 30: those released up to 0.2.1, frozen.

Every installation upgraded past 0.2.1 has run them, and a database records only the version it
reached, so their text never changes again; kept apart so that gateway/store/migrations.py holds
the migrations still being added to. gateway/store/migrations.py joins both lists in order.
"""

from __future__ import annotations

UP_TO_0_2_1: list[str] = [
    # 2: abuse rules and audit
    """
    CREATE TABLE optouts (
        number TEXT PRIMARY KEY,
        word TEXT,
        source TEXT NOT NULL,                     -- 'mo' or 'admin'
        created_at REAL NOT NULL
    );
    CREATE TABLE limit_notices (
        scope TEXT NOT NULL,
        period TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (scope, period)
    ) WITHOUT ROWID;
    CREATE INDEX messages_account ON messages(account_id, id);
    CREATE INDEX emails_received ON emails(received_at);
    """,
    # 3: the retention purge finds an email's messages and a part's DLRs without a table scan
    # (deleting also checks these foreign keys, so without them every chunk scanned both tables)
    """
    CREATE INDEX messages_email ON messages(email_id);
    CREATE INDEX dlrs_part ON dlrs(part_id);
    """,
    # 4: fair claiming across accounts: each account's unfinished messages in age order
    """
    CREATE INDEX messages_waiting ON messages(account_id, id)
        WHERE state NOT IN ('submitted', 'delivered', 'failed', 'expired', 'cancelled');
    """,
    # 5: two-way SMS: one conversation per (user, phone) with the number it is sent from;
    # each whole MO records what became of it (mailed, fallback, unmatched, opt-out, duplicate)
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        phone TEXT NOT NULL,                      -- E.164
        number TEXT NOT NULL,                     -- our originating number (pool or account sender)
        user_email TEXT NOT NULL COLLATE NOCASE,
        account_id INTEGER,
        domain TEXT NOT NULL,                     -- the gateway domain the mail was sent to
        header_message_id TEXT,                   -- of the last email: replies thread under it
        subject TEXT,
        text TEXT NOT NULL,                       -- the last SMS text, quoted in the reply
        started_at REAL NOT NULL,
        last_mt_at REAL NOT NULL
    );
    CREATE UNIQUE INDEX conversations_user_phone ON conversations(phone, user_email);
    CREATE INDEX conversations_match ON conversations(phone, number, last_mt_at);
    CREATE INDEX conversations_age ON conversations(last_mt_at);
    ALTER TABLE mo ADD COLUMN conversation_id INTEGER;
    ALTER TABLE mo ADD COLUMN note TEXT;
    CREATE INDEX mo_received ON mo(received_at);
    """,
    # 6: an account's own reply window: NULL = [replies] window_days; long-MO segments found
    # by their set (reassembly, and a segment delivered again after its set was joined)
    """
    ALTER TABLE accounts ADD COLUMN reply_window_days REAL;
    CREATE INDEX mo_segments ON mo(source, concat_ref, concat_total, concat_seq) WHERE concat_ref IS NOT NULL;
    """,
    # 7: premium-rate services: services bound to a password, an account and a verified
    # address; one row per premium MO with its money (grosze) and answer token; free answers
    """
    CREATE TABLE premium_services (
        id INTEGER PRIMARY KEY,
        password TEXT NOT NULL,                   -- KPxxx, upper case
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        email TEXT NOT NULL,                      -- where its MOs are mailed, once verified
        numbers TEXT NOT NULL DEFAULT '',         -- premium numbers it runs on, space separated; '' = all
        verified_at REAL,                         -- NULL: MOs wait for the address to confirm
        created_at REAL NOT NULL,
        removed_at REAL                           -- kept for the money records of its past MOs
    );
    CREATE UNIQUE INDEX premium_services_password ON premium_services(password) WHERE removed_at IS NULL;
    CREATE TABLE premium_reply_acl (
        service_id INTEGER NOT NULL REFERENCES premium_services(id),
        address TEXT NOT NULL COLLATE NOCASE,
        PRIMARY KEY (service_id, address)
    );
    CREATE TABLE premium_verifications (
        token TEXT PRIMARY KEY,
        service_id INTEGER NOT NULL REFERENCES premium_services(id),
        email TEXT NOT NULL,                      -- the address this token confirms
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        used_at REAL
    );
    CREATE TABLE premium_mo (
        id INTEGER PRIMARY KEY,
        mo_id INTEGER NOT NULL UNIQUE,            -- the whole MO in table mo
        number TEXT NOT NULL,                     -- the premium number it was sent to
        phone TEXT NOT NULL,                      -- E.164, or the source as sent when not a number
        service_id INTEGER REFERENCES premium_services(id),  -- NULL: unknown password
        account_id INTEGER,
        password TEXT,                            -- the password it started with, upper case
        parts INTEGER NOT NULL,                   -- the operator charges each part
        price INTEGER NOT NULL,                   -- grosze, net, for all parts
        commission INTEGER NOT NULL,              -- grosze, for all parts
        text TEXT NOT NULL,                       -- what follows the password (blanked after retention)
        state TEXT NOT NULL,                      -- mailed | awaiting | fallback | unmatched
        note TEXT,
        token TEXT UNIQUE,                        -- the answer address carries it
        answers INTEGER NOT NULL DEFAULT 0,       -- free answers sent
        received_at REAL NOT NULL,
        forwarded_at REAL
    );
    CREATE INDEX premium_mo_received ON premium_mo(received_at);
    CREATE INDEX premium_mo_awaiting ON premium_mo(service_id, id) WHERE state = 'awaiting';
    CREATE INDEX premium_mo_repeat ON premium_mo(phone, number, received_at);
    CREATE TABLE premium_answers (
        id INTEGER PRIMARY KEY,
        premium_mo_id INTEGER NOT NULL REFERENCES premium_mo(id),
        mail_from TEXT NOT NULL,
        header_message_id TEXT,
        state TEXT NOT NULL,                      -- sent | refused
        reason TEXT,
        message_id INTEGER,                       -- the free SMS in table messages
        text TEXT,                                -- as sent (blanked after retention)
        cut INTEGER NOT NULL DEFAULT 0,           -- the answer was cut to one SMS
        created_at REAL NOT NULL
    );
    CREATE INDEX premium_answers_mo ON premium_answers(premium_mo_id);
    """,
    # 8: monthly billing: an account's billing addresses, the billing state (last month billed
    # and mailed, how far the retention purge has deleted), and the indexes a month's rows are read by
    """
    CREATE TABLE account_billing_to (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        address TEXT NOT NULL COLLATE NOCASE,
        PRIMARY KEY (account_id, address)
    );
    CREATE TABLE billing_state (
        key TEXT PRIMARY KEY,                     -- 'last_billed' (YYYY-MM) | 'purged_before' (Unix s)
        value TEXT NOT NULL
    );
    CREATE INDEX messages_billing ON messages(account_id, created_at);
    CREATE INDEX premium_mo_billing ON premium_mo(account_id, received_at);
    CREATE INDEX premium_answers_message ON premium_answers(message_id) WHERE message_id IS NOT NULL;
    """,
    # 9: the web panel: who may log in to it (user | admin = company admin | operator), the audit
    # trail of its changes, and a message search by number that pages by id without sorting
    """
    ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,                      -- the login that made the change
        account_id INTEGER,                       -- the account it concerns, NULL = installation
        action TEXT NOT NULL,                     -- e.g. user.add, account.set, message.retry
        detail TEXT                               -- what changed; never a password
    );
    CREATE INDEX audit_account ON audit(account_id, id);
    CREATE INDEX messages_recipient_id ON messages(recipient, id);
    """,
    # 10: `smsgw auth unlock` from another process: the daemon's in-memory lockouts read these rows
    """
    CREATE TABLE auth_unlocks (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,                     -- '*', a login (casefolded) or a client address / IPv6 /64
        created_at REAL NOT NULL                  -- a lock that started after this is kept
    );
    """,
    # 11: the panel's message search by sender (a case-blind match) reads the sender's own emails
    # instead of walking every message newest first
    """
    CREATE INDEX emails_sender ON emails(mail_from COLLATE NOCASE, id);
    """,
    # 12: the daemon keeps users, accounts, networks and opt-outs in memory; any change to them, by
    # any process, gives `settings_generation` a new random value in the same transaction
    """
    CREATE TABLE settings_generation (value INTEGER NOT NULL);
    INSERT INTO settings_generation VALUES (0);
    """
    + "".join(
        f"CREATE TRIGGER {table}_{event.lower()}_generation AFTER {event} ON {table}\n"
        "BEGIN UPDATE settings_generation SET value = random(); END;\n"
        for table in ("accounts", "users", "account_networks", "optouts")
        for event in ("INSERT", "UPDATE", "DELETE")
    ),
    # 13: a resumed account is judged afresh: its failure share counts only messages after
    # the highest message id at the resume, so the failures the admin has just looked at cannot
    # suspend it again at its next failure
    """
    ALTER TABLE accounts ADD COLUMN resumed_after_message INTEGER;
    """,
    # 14: removing a user detaches their emails (kept for audit, R-2.5): this index finds them, and
    # serves the foreign-key check of the delete, instead of two scans of every email. Counters and
    # limit notices of users removed before go, since SQLite gives a removed user's id to the next
    # user added, who must not start with them
    """
    CREATE INDEX emails_user ON emails(user_id) WHERE user_id IS NOT NULL;
    DELETE FROM usage WHERE scope LIKE 'user:%'
        AND CAST(substr(scope, 6) AS INTEGER) NOT IN (SELECT id FROM users);
    DELETE FROM limit_notices WHERE scope LIKE 'user:%'
        AND CAST(substr(scope, 6) AS INTEGER) NOT IN (SELECT id FROM users);
    """,
    # 15: an SMS the SMSC delivers again is told from a new identical one by the acknowledgement of
    # the earlier copy: `acked_at` is when its deliver_sm_resp / 70 went out, set once the
    # SMSC was seen to read it (NULL: it may never have reached the SMSC, which then delivers the
    # same SMS again). MOs stored before were acknowledged right after they were stored. The index
    # finds a phone's earlier MOs to the same number.
    """
    ALTER TABLE mo ADD COLUMN acked_at REAL;
    UPDATE mo SET acked_at = received_at;
    CREATE INDEX mo_copies ON mo(source, destination, received_at);
    """,
    # 16: an MO that came on the same connection within seconds of an identical one the SMSC had
    # not been answered for yet is a new SMS (the SMSC waits for that answer before it delivers an
    # MO again), whatever became of the earlier one's acknowledgement: two votes flushed back to back
    # after an outage are two votes
    """
    ALTER TABLE mo ADD COLUMN repeated INTEGER NOT NULL DEFAULT 0;
    """,
    # 17: an answer belongs to the account whose SMS it answered, kept on the MO when it is
    # matched to its conversation: the conversation's account is that of the user's latest SMS, so
    # a user moved to another account took their past answers into the other account's billing.
    # MOs matched before take their conversation's account as it is now; the index reads an
    # account's answers of a month in time order.
    """
    ALTER TABLE mo ADD COLUMN account_id INTEGER;
    UPDATE mo SET account_id = (SELECT c.account_id FROM conversations c WHERE c.id = mo.conversation_id)
        WHERE conversation_id IS NOT NULL;
    CREATE INDEX mo_billing ON mo(account_id, received_at) WHERE account_id IS NOT NULL;
    """,
    # 18: a long MO joined by the timeout without some parts keeps which parts it holds (`seqs`, NULL
    # for a whole set): it is charged for those, and a set that later brings only parts it lacked is
    # its late rest (`follows`: the first whole text of the SMS), sent where it went
    """
    ALTER TABLE mo ADD COLUMN seqs TEXT;
    ALTER TABLE mo ADD COLUMN follows INTEGER;
    CREATE INDEX mo_incomplete ON mo(source, concat_ref, concat_total, id) WHERE seqs IS NOT NULL;
    """,
    # 19: a message whose delivery report never came ends `unreported` (final, no failure); it
    # leaves the index of unfinished messages, which every claim walks account by account (left in
    # it, an SMSC that never reports would make each claim read every such message of the retention)
    """
    DROP INDEX messages_waiting;
    CREATE INDEX messages_waiting ON messages(account_id, id)
        WHERE state NOT IN ('submitted', 'delivered', 'failed', 'expired', 'cancelled', 'unreported');
    """,
    # 20: the expiry finds the SMS waiting for a report whose day is over, and those taken without a
    # message id, by their validity: on the state index it read every SMS waiting for a report
    # (a million from an SMSC that never reports: half a second of the event loop every 15 s)
    """
    CREATE INDEX IF NOT EXISTS parts_receipt_wait ON parts(expires_at) WHERE state = 'submitted';
    CREATE INDEX IF NOT EXISTS parts_unconfirmed ON parts(expires_at)
        WHERE state = 'submitted' AND smsc_id IS NULL;
    """,
    # 21: the mail recorded and not sent as SMS (`smsgw queue recorded`, the panel's list of it),
    # newest first, all of it or an account's: without these the walk read every email back to
    # the last such one, a few among millions
    """
    CREATE INDEX IF NOT EXISTS emails_recorded ON emails(id) WHERE automatic IS NOT NULL;
    CREATE INDEX IF NOT EXISTS emails_recorded_account ON emails(account_id, id) WHERE automatic IS NOT NULL;
    """,
    # 22: the SMSC's own time stamp of an MO (CIMD2's 060, the moment it took the SMS from the phone),
    # kept as the SMSC wrote it: a copy it delivers again carries the same, a new SMS from the phone a
    # new one, so a vote sent again after an acknowledgement lost with its connection is charged
    # again. Text, not a time: it is compared for identity only, is on the SMSC's clock (not ours, so
    # a clock step never moves it) and in its local time. NULL where the protocol gives none (SMPP)
    """
    ALTER TABLE mo ADD COLUMN smsc_time TEXT;
    """,
    # 23: the late parts of a long premium SMS name the premium MO of its first parts on their own
    # money record (`follows`). Billing and the figures knew them only through `mo.follows`, and the
    # retention purge deletes the rows of table mo while premium_mo stays: after it a late part was
    # billed as an SMS of its own, no longer "late part of the SMS of <date>". Rows stored before
    # take the link from table mo where it is still there (only the few late parts are written).
    """
    ALTER TABLE premium_mo ADD COLUMN follows INTEGER REFERENCES premium_mo(id);
    UPDATE premium_mo SET follows = (
        SELECT f.id FROM mo l JOIN premium_mo f ON f.mo_id = l.follows WHERE l.id = premium_mo.mo_id
    ) WHERE mo_id IN (SELECT id FROM mo WHERE follows IS NOT NULL);
    """,
    # 24: the address a message's number was given by at RCPT, as the client wrote it (601120000@…,
    # not the E.164 form): its bounce names it in Final-Recipient (RFC 3464 2.3.2), which is what
    # the sender's bounce processing matches its own mail by. NULL for rows stored before and for
    # SMS no RCPT asked for (premium answers): their bounce names the number as before.
    """
    ALTER TABLE messages ADD COLUMN rcpt TEXT;
    """,
    # 25: the References chain of the user's latest mail to the phone, bounded: the next answer's
    # References continue it (the user's mail last). With only the user's mail in it, an answer
    # after the user's reply lost the thread in clients that thread by References (Thunderbird)
    """
    ALTER TABLE conversations ADD COLUMN refs TEXT;
    """,
    # 26: whether the mail itself asked to wait for quiet hours (its Precedence or a mailing list's
    # headers) rather than only its account's `bulk` setting: `account set --bulk off` releases the
    # SMS held by the setting alone, which otherwise waited for the window's end. NULL for rows
    # stored before: which it was is not known, and they keep their time
    """
    ALTER TABLE messages ADD COLUMN bulk INTEGER;
    """,
    # 27: the link a part leaves by while that link is configured (NULL: its number's routes). A
    # premium answer goes from the short code by the link its vote came by: the short code is
    # provisioned at that operator, and the phone's prefix link refused it as an invalid source
    # (the free answer spent) or sent it by another operator
    """
    ALTER TABLE parts ADD COLUMN via TEXT;
    """,
    # 28: the counts of a /metrics scrape (gateway/web/counts.py) read these instead of the tables: a
    # year of traffic took 14 s a scrape (past Prometheus's 10 s timeout) reading every message and
    # every part's payload, and its read snapshot held the WAL checkpoint, so the daemon's writes
    # waited. `WHERE id > 0` (every row: SQLite numbers rows from 1) keeps them out of every other
    # plan: a query uses a partial index only when it says the same, and only the counts do.
    # Without statistics SQLite took parts(link, state) over parts_smsc to match each delivery
    # report, reading every part of the link waiting for its report.
    """
    CREATE INDEX messages_counts ON messages(account_id, state) WHERE id > 0;
    CREATE INDEX parts_counts ON parts(link, state) WHERE id > 0;
    """,
    # 29: the retention purge reads finished outbox mail older than the retention off this index's
    # range: on outbox_due (state, next_attempt_at) each chunk of 200 read and sorted every sent
    # mail, 0.4 s of the event loop a chunk at a year of traffic, even with one mail left to delete
    """
    CREATE INDEX outbox_age ON outbox(state, created_at);
    """,
    # 30: an account's and a user's conversations, newest first (the panel's /conversations, `smsgw
    # conversation list --user`): ordered by age alone SQLite walked every conversation kept for
    # them, about a second each at 684,000, once per user of the account on the event loop
    """
    CREATE INDEX conversations_account ON conversations(account_id, last_mt_at);
    CREATE INDEX conversations_user ON conversations(user_email, last_mt_at);
    """,
]
