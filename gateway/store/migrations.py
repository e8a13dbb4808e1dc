"""How the schema changed after version 1 (gateway/store/schema.py): migrations 2 onwards, in order,
each with why it was made. Appended to, never edited: a database records the version it reached.
"""

from __future__ import annotations

SINCE_CORE: list[str] = [
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
    # 31: what the retention purge deleted, counted by what /metrics labels it with, so that the
    # counters go on from the rows kept plus these: they fell by each night's purge, which
    # Prometheus reads as a restart of the counter and `rate()` as everything counted arriving at
    # once (a nightly burst of "failed" SMS in every dashboard and alert)
    """
    CREATE TABLE purged_counts (
        metric TEXT NOT NULL,                     -- 'messages', 'parts', 'mo'
        label TEXT NOT NULL,                      -- account id, link ('' for none)
        state TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (metric, label, state)
    ) WITHOUT ROWID;
    """,
    # 32: an answer mail names the MO it carries (`mo_ref`) and where its copy goes if the relay
    # refuses it for good (`fallback`: JSON, the address and the settings the copy is written with,
    # those of the config it was queued under: the outbox worker has none). A user who had left was
    # refused at RCPT (550 5.1.1 User unknown): the mail was marked failed and nothing more, so the
    # phone's answer was lost unless the same failure came later as a bounce (then forwarded to the
    # fallback), and `smsgw mo list` still said "mailed". NULL for other mail and for rows stored before.
    # `unanswered`: the sends of a mail the relay took whole without answering (gateway.outboxworker),
    # counted across restarts, as each may have delivered it once more. `refused_at`: when its
    # refusal was handled (the copy sent, the MO told), so that `smsgw outbox retry` neither sends a
    # second copy nor leaves the MO saying "refused" once the retry is delivered.
    """
    ALTER TABLE outbox ADD COLUMN mo_ref INTEGER;
    ALTER TABLE outbox ADD COLUMN fallback TEXT;
    ALTER TABLE outbox ADD COLUMN unanswered INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN refused_at REAL;
    """,
    # 33: when the first part of a long MO came (`parts_at`), kept on the whole text joined from its
    # parts, whose `received_at` is the join (billing's months go by it). A long answer joined by
    # the timeout, or after a restart, was matched to its conversation as of a fixed 5 minutes
    # before the join: whoever texted the phone after it answered got the answer, and a join an
    # outage delayed judged the reply window late. NULL for rows stored before and for single SMS
    """
    ALTER TABLE mo ADD COLUMN parts_at REAL;
    """,
    # 34: the expiry finds the SMS still waiting to go (queued, deferred, held) whose validity is over
    # by that validity: on the due index it read every waiting part, 0.1 s of the event loop every
    # 15 s with 200,000 waiting and 0.6 s with a million (a campaign queued behind an SMSC outage)
    """
    CREATE INDEX IF NOT EXISTS parts_waiting_expiry ON parts(expires_at)
        WHERE state IN ('queued', 'deferred', 'hold');
    """,
    # 35: a part knows its message's account, and the parts waiting to go are indexed by account and
    # due time: a claim takes each account's due parts from it in a few steps. It walked the account's
    # unfinished messages in age order instead, and an account with more than the walk reads held
    # (a campaign held for quiet hours, deferred by a throttling SMSC) had its due parts looked for on
    # the queue's due index, past every other account's due part: 160,000 VM steps a claim with
    # 20,000 of another account's due, linear in them. Filled for every part not final, found by the
    # state index (a year of final parts is not read); a final part an admin sends again takes its
    # account then (`AdminRepo.retry_message`). The index of unfinished messages the walk read
    # (migrations 4, 19) has no reader left: dropped, as each message's insert and state change kept it.
    """
    DROP INDEX IF EXISTS messages_waiting;
    ALTER TABLE parts ADD COLUMN account_id INTEGER;
    UPDATE parts SET account_id = (SELECT m.account_id FROM messages m WHERE m.id = parts.message_id)
        WHERE state IN ('queued', 'deferred', 'active', 'hold', 'submitted');
    CREATE INDEX IF NOT EXISTS parts_account_due ON parts(account_id, state, next_attempt_at)
        WHERE state IN ('queued', 'deferred');
    """,
    # 36: the mails to postmaster forwarded in the last hour, which cap the next (gateway.smtp.postmaster):
    # counted among all mail recorded and not sent in the hour (bounces, info@, refused mail), each RCPT
    # to postmaster read it all, 80-100 ms of the event loop at 100,000, and anyone may send that RCPT
    # again and again. The predicate is `postmaster.FORWARDED` written out, repeated by the count (SQLite
    # takes a partial index only for a query that does so); the columns are all the count reads.
    """
    CREATE INDEX IF NOT EXISTS emails_postmaster ON emails(received_at, client_ip, account_id)
        WHERE automatic = 'mail to postmaster, forwarded to the gateway''s administrator';
    """,
    # 37: the mail given up on in the last 24 hours (gateway.store.outboxhealth), counted by when it
    # failed (`sent_at`), not by when it was queued: the predicate repeated by the count.
    """
    CREATE INDEX IF NOT EXISTS outbox_failed ON outbox(state, sent_at) WHERE state = 'failed';
    """,
    # 38: a premium MO whose party changed after its month was billed (its password came late, or its
    # unconfirmed service was removed) keeps its row as billed; the change is booked when it happens,
    # a reversal for the party billed and an entry for the new one (`account_id` NULL: no service),
    # which that month's files list. The row was rewritten: the billed month's bill no longer matched
    # the one mailed, and no later bill carried the money moved (gateway.premium.corrections)
    """
    CREATE TABLE IF NOT EXISTS premium_corrections (
        id INTEGER PRIMARY KEY,
        premium_mo_id INTEGER NOT NULL REFERENCES premium_mo(id),
        account_id INTEGER,                       -- the party booked; NULL: no service (the operator)
        service_id INTEGER REFERENCES premium_services(id),
        sms INTEGER NOT NULL,                     -- +1 or -1, and the rest signed alike
        parts INTEGER NOT NULL,
        price INTEGER NOT NULL,                   -- grosze
        commission INTEGER NOT NULL,              -- grosze
        status TEXT NOT NULL,                     -- the billing status it is counted under
        note TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS premium_corrections_billing ON premium_corrections(account_id, created_at);
    CREATE INDEX IF NOT EXISTS premium_corrections_mo ON premium_corrections(premium_mo_id);
    """,
    # 39: an answer names the conversation it was mailed in (`mo.conversation_id`), and an answer may
    # outlive it: the purge took a conversation past its window while an answer of it, come within
    # the SMS's validity after the window, was kept; SQLite then gave its id to the next conversation,
    # another company's, whose user the company admin's panel named as the one the answer was mailed
    # to (and a refusal of that answer's mail quoted). The purge now keeps a conversation while an MO
    # names it, found by this index (gateway.store.retention).
    """
    CREATE INDEX IF NOT EXISTS mo_conversation ON mo(conversation_id) WHERE conversation_id IS NOT NULL;
    """,
    # 40: the outbox claims the due mail of other kinds before the bulk kinds (the monthly billing
    # files) by reading each group off this index in order (gateway.store.outbox `_CLAIM_IDS`); on
    # outbox_due alone it sorted every due row at each claim. The expression is written as the
    # claim writes it, or SQLite does not use the index.
    """
    CREATE INDEX IF NOT EXISTS outbox_claim ON outbox(state, (kind IN ('billing')), next_attempt_at);
    """,
    # 41: the answers to premium SMS, newest first (`smsgw premium answers`): a refused one (a sender
    # off the reply list, a limit, the window) was in this table alone, found by no command; read off
    # this index, a listing stops at its limit instead of sorting every answer ever taken
    """
    CREATE INDEX IF NOT EXISTS premium_answers_created ON premium_answers(created_at);
    """,
    # 42: an answer names its service's password (`smsgw premium answers KPxxx` reads that password's
    # answers newest first off premium_answers_password, where off premium_answers_created it walked
    # every answer of every service to find a few), and keeps the envelope sender as received when
    # its sender is recorded without a BATV tag (`envelope`): a failed answer's report goes there, as
    # a server that tags its senders refuses a bounce to an untagged address
    """
    ALTER TABLE premium_answers ADD COLUMN password TEXT;
    ALTER TABLE premium_answers ADD COLUMN envelope TEXT;
    UPDATE premium_answers SET password = (SELECT p.password FROM premium_mo p WHERE p.id = premium_mo_id);
    CREATE INDEX IF NOT EXISTS premium_answers_password ON premium_answers(password, created_at);
    """,
    # 43: an account's cut-from phrases (`smsgw account set --cut-from`), a line each: the text of its
    # mail ends above the first line starting with one, the confidentiality clause its mail server
    # appends to every mail (one made six UCS-2 parts of each SMS)
    """
    ALTER TABLE accounts ADD COLUMN cut_from TEXT;
    """,
    # 44: the name the user's mail gave the phone (`"Pan Kowalski" <601123430@…>`, an Outlook
    # contact): the phone's answer comes from "Pan Kowalski (+48 601 123 430)", where it came from a
    # bare number the user's mail program could not name either (its contact has another address)
    """
    ALTER TABLE conversations ADD COLUMN name TEXT;
    """,
    # 45: what an account does with mail whose only machine sign is a monitoring system's
    # (`Auto-Submitted: auto-generated`, which cron adds to every mail): 'record' as says, or
    # 'send' for an account that exists for alerts (`smsgw account set --auto-generated send`)
    """
    ALTER TABLE accounts ADD COLUMN auto_generated TEXT NOT NULL DEFAULT 'record';
    """,
    # 46: the envelope sender as received when the mail's sender is recorded without the BATV tag its
    # company's server wrote into it (`prvs=0123abcdef=anna@acme.example` is user anna@acme.example):
    # the mail's DSNs go there, as such a server refuses a bounce to an untagged address
    """
    ALTER TABLE emails ADD COLUMN envelope TEXT;
    """,
    # 47: where an SMS to an account's own sender number that answers no conversation is mailed
    # (`smsgw account set --inbound-address`): the company's reception, where it went to the
    # operator's `[replies] fallback_address` (a customer texting the company first)
    """
    ALTER TABLE accounts ADD COLUMN inbound_address TEXT;
    """,
    # 48: the countries an account's SMS may go to (`smsgw account set --countries PL`, ISO regions,
    # "PL,DE"; NULL: any the links serve): a mistyped number abroad, a costly destination, is
    # refused at RCPT instead of sent and billed
    """
    ALTER TABLE accounts ADD COLUMN countries TEXT;
    """,
    # 49: the answers kept past the hourly limit, by phone and time (`mo_kept`): the housekeeping read
    # every kept answer of the database per phone due (off mo_state alone) and sorted them, 6 s of the
    # store's only write for 100 phones of 2,000; and per phone, how many mails of its kept answers
    # went in a row, and before when its kept answers are no longer mailed (after the last of them
    # said how many more there are and where they are listed: gateway.conversations.kept)
    """
    CREATE INDEX IF NOT EXISTS mo_kept ON mo(source, received_at, id) WHERE state = 'throttled';
    CREATE TABLE IF NOT EXISTS kept_phones (
        source TEXT PRIMARY KEY,                  -- mo.source
        mails INTEGER NOT NULL,                   -- runs of its kept mails since it had none kept
        closed_at REAL,                           -- its answers kept before are no longer mailed
        at REAL NOT NULL                          -- its last kept mail
    );
    """,
    # 50: what a mail program asked to be told per recipient with SMTP DSN (RFC 3461): NOTIFY on
    # the message (`never`, or some of `success,failure,delay`; NULL: the account's dlr_mail decides)
    # and ORCPT, the recipient as first named; RET and ENVID on the email. Outlook's "Request a
    # delivery receipt" for one SMS got a notice only where the whole account had dlr_mail all
    """
    ALTER TABLE messages ADD COLUMN notify TEXT;
    ALTER TABLE messages ADD COLUMN orcpt TEXT;
    ALTER TABLE emails ADD COLUMN dsn_ret TEXT;
    ALTER TABLE emails ADD COLUMN envid TEXT;
    """,
    # 51: the audit trail by time (`smsgw audit --since`): the rows since a date, not the whole trail
    # read backwards to find that there were none
    """
    CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
    """,
    # 52: the numbers each account has sent from, and until when (`until` NULL: it still does). A
    # number that moved to another account answered the former one's customers only while a
    # conversation of theirs on it was kept: after the retention purge their first SMS reached the
    # new account's inbound address, another company (gateway.conversations.inbound). Kept by these
    # triggers, whichever process changes an account, on the database's clock. A number is kept
    # once the account stops sending from it only if it did send while it had it: an SMS or a
    # conversation of the account since then (`since`; NULL: from before this migration), each one
    # seek of an index by account and time, never the account's rows read. A sender mistyped and
    # fixed at once, or an account added by mistake and removed (`account remove` refuses one with
    # any SMS), made another company's number the operator's for the retention and a reply window.
    # Seeded with today's senders, and with every number the kept conversations show an account
    # sent from that is not its sender today: one it left before the upgrade, whether another
    # account sends from it yet or not, until its last SMS from it. Read in one pass of the table
    # (0.9 s at 700,000), where by an index SQLite fetched every row apart (6 s). The sender as
    # typed ("48500600700") is compared with the conversation's E.164 without "+" or "00"; a form
    # only the region reads (national) is seeded too, harmlessly: a row of the account's own
    # number never keeps it from itself, and another account that gives it as its sender shares it.
    # Read by `until` only: the few that moved lately. A rebuild of `accounts` (a new table copied
    # and renamed, as SQLite alters a column) drops these triggers: it must create them again.
    """
    CREATE TABLE IF NOT EXISTS account_senders (
        account_id INTEGER NOT NULL,
        sender TEXT NOT NULL,                     -- as the account stored it, or as a conversation did
        since REAL,                               -- Unix s: when it began (NULL: before migration 52)
        until REAL                                -- Unix s: when it stopped sending from it
    );
    CREATE INDEX IF NOT EXISTS account_senders_until ON account_senders(until) WHERE until IS NOT NULL;
    INSERT INTO account_senders (account_id, sender)
        SELECT id, sender FROM accounts WHERE sender IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM account_senders h WHERE h.account_id = accounts.id AND h.until IS NULL);
    INSERT INTO account_senders (account_id, sender, until)
        SELECT c.account_id, c.number, MAX(c.last_mt_at) FROM conversations c NOT INDEXED
        WHERE c.account_id IS NOT NULL
        GROUP BY c.account_id, c.number
        HAVING NOT EXISTS (
            SELECT 1 FROM accounts a WHERE a.id = c.account_id AND a.sender IS NOT NULL
            AND (a.sender = c.number OR '+' || CASE WHEN a.sender LIKE '00%' THEN substr(a.sender, 3)
                ELSE ltrim(a.sender, '+') END = c.number))
        AND NOT EXISTS (SELECT 1 FROM account_senders h WHERE h.until IS NOT NULL);
    CREATE TRIGGER IF NOT EXISTS accounts_sender_insert AFTER INSERT ON accounts WHEN NEW.sender IS NOT NULL
    BEGIN
        INSERT INTO account_senders (account_id, sender, since)
            VALUES (NEW.id, NEW.sender, (julianday('now') - 2440587.5) * 86400.0);
    END;
    CREATE TRIGGER IF NOT EXISTS accounts_sender_update AFTER UPDATE OF sender ON accounts
        WHEN OLD.sender IS NOT NEW.sender
    BEGIN
        UPDATE account_senders SET until = (julianday('now') - 2440587.5) * 86400.0
            WHERE account_id = OLD.id AND until IS NULL
            AND (EXISTS (SELECT 1 FROM messages m WHERE m.account_id = OLD.id
                    AND m.created_at >= IFNULL(account_senders.since, 0))
                OR EXISTS (SELECT 1 FROM conversations c
                    WHERE c.account_id = OLD.id AND c.last_mt_at >= IFNULL(account_senders.since, 0)));
        DELETE FROM account_senders WHERE account_id = OLD.id AND until IS NULL;
        INSERT INTO account_senders (account_id, sender, since)
            SELECT NEW.id, NEW.sender, (julianday('now') - 2440587.5) * 86400.0 WHERE NEW.sender IS NOT NULL;
    END;
    CREATE TRIGGER IF NOT EXISTS accounts_sender_delete AFTER DELETE ON accounts
    BEGIN
        DELETE FROM account_senders WHERE account_id = OLD.id;
    END;
    """,
    # 53: what `smsgw phone show|forget` finds the mails about a phone by. A notice about an accepted
    # mail (confirmation, held, truncated, not sent, a bounce forwarded) names that mail (`email_ref`),
    # a bounce of a premium SMS's mail its premium SMS (`premium_ref`): they quote its subject and text.
    # And the indexes by each reference: at 100,000 outbox mails `phone show` read the whole outbox
    # (7.6 s cold) and its erasure held the write lock 0.3-1 s.
    """
    ALTER TABLE outbox ADD COLUMN email_ref INTEGER;
    ALTER TABLE outbox ADD COLUMN premium_ref INTEGER;
    CREATE INDEX IF NOT EXISTS outbox_message_ref ON outbox(message_ref) WHERE message_ref IS NOT NULL;
    CREATE INDEX IF NOT EXISTS outbox_mo_ref ON outbox(mo_ref) WHERE mo_ref IS NOT NULL;
    CREATE INDEX IF NOT EXISTS outbox_email_ref ON outbox(email_ref) WHERE email_ref IS NOT NULL;
    CREATE INDEX IF NOT EXISTS outbox_premium_ref ON outbox(premium_ref) WHERE premium_ref IS NOT NULL;
    """,
]
