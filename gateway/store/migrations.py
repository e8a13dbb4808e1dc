"""How the schema changed after version 1 (gateway/store/schema.py): migrations 2 onwards, in order,
each with why it was made. Appended to, never edited: a database records the version it reached.
Migrations 2 to 30, released up to 0.2.1, are gateway/store/migrations_early.py's; 31 to 60 are
here; 61 onwards are gateway/store/migrations_since_61.py's, and a new migration goes at the end of
that module's list.
"""

from __future__ import annotations

from gateway.store.migrations_early import UP_TO_0_2_1
from gateway.store.migrations_since_61 import SINCE_61

SINCE_CORE: list[str] = [
    *UP_TO_0_2_1,
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
    # 54: the notices that name a phone no SMS row of it stands behind (the not-sent notice of a number
    # left out of a group mail or of an out-of-office reply, a bounce forwarded), which `smsgw phone
    # show|forget` reads by their content: off this index it reads these few kinds, not the outbox.
    # The numbers a mail recorded and never sent (a bounce, an auto-reply) was addressed to, which
    # nothing else keeps when no notice was written about it; and the phone (E.164) a delivery report
    # never matched to a part named: another phone's report given a reused SMSC id is not this one's.
    # Both written in the INSERT there was; the records are read off `emails_recorded` (migration 21).
    """
    CREATE INDEX IF NOT EXISTS outbox_naming ON outbox(kind) WHERE kind IN ('not-sent', 'bounce-forward');
    ALTER TABLE emails ADD COLUMN numbers TEXT;
    ALTER TABLE dlrs ADD COLUMN phone TEXT;
    """,
    # 55: the expiry's index of the parts still waiting (migration 34) says which by comparisons, not
    # by an IN list: SQLite tests a list of three or more values through a temporary b-tree, and it
    # tests the index's condition at every insert of a part and twice at every change of its state
    # (before and after), 1.4 µs each: about 10 µs of the daemon's CPU per SMS sent and reported.
    # The expiry's query names the same condition (`queue.WAITING`), or the index serves it not.
    """
    DROP INDEX IF EXISTS parts_waiting_expiry;
    CREATE INDEX parts_waiting_expiry ON parts(expires_at)
        WHERE state = 'queued' OR state = 'deferred' OR state = 'hold';
    """,
    # 56: `conversations_match` (phone, number, last_mt_at) goes. Every mail's conversation upsert
    # wrote it (a new row, or a moved `last_mt_at`): one index page more per mail in the WAL, for
    # reads the unique `conversations_user_phone` (phone, user_email) serves by the same phone: a
    # phone has the conversations of the few users who wrote to it. Query plans, before → after
    # (no ANALYZE, 140,000 conversations): the MO's match (phone = ? AND number = ? AND live) and
    # `shared_with` (… AND id != ?), phone=? AND number=? → phone=?; `last_on` (ORDER BY last_mt_at
    # DESC LIMIT 1), `numbers_with` (DISTINCT number) and the reply pool's last use per number
    # (GROUP BY number), phone=? → phone=? plus a sort of that phone's few rows; the erasure's
    # SELECT and DELETE by phone, phone=? → phone=?. The others (by phone and user, by id, by
    # account, by user, by age for the listings and the retention purge) never used it.
    """
    DROP INDEX IF EXISTS conversations_match;
    """,
    # 57: each user's `role_key`, drawn anew by these triggers whenever the role changes (by the
    # panel, `smsgw user set` in another process, or any other writer) and for each user added: a
    # panel session remembers it at login and ends when it differs. The panel re-read the role at
    # each request only, so a role taken away and given back with no request of the session in
    # between left its cookie and CSRF token working. A table of its own, not a column, so that the
    # migration can run again over what it made (IF NOT EXISTS), as the upgrade tests do.
    """
    CREATE TABLE IF NOT EXISTS user_role_keys (
        user_id INTEGER PRIMARY KEY,              -- users.id; goes with the user
        key TEXT NOT NULL                         -- random, new at each change of the role
    );
    INSERT OR IGNORE INTO user_role_keys (user_id, key) SELECT id, lower(hex(randomblob(16))) FROM users;
    CREATE TRIGGER IF NOT EXISTS users_role_key_insert AFTER INSERT ON users
    BEGIN
        INSERT OR REPLACE INTO user_role_keys (user_id, key) VALUES (NEW.id, lower(hex(randomblob(16))));
    END;
    CREATE TRIGGER IF NOT EXISTS users_role_key_update AFTER UPDATE OF role ON users
        WHEN OLD.role IS NOT NEW.role
    BEGIN
        INSERT OR REPLACE INTO user_role_keys (user_id, key) VALUES (NEW.id, lower(hex(randomblob(16))));
    END;
    CREATE TRIGGER IF NOT EXISTS users_role_key_delete AFTER DELETE ON users
    BEGIN
        DELETE FROM user_role_keys WHERE user_id = OLD.id;
    END;
    """,
    # 58: the client addresses each login succeeded from lately (acl/lockout.py's "known good"
    # pairs), which the per-login lock and the overall rate spare. Kept in memory only, they were
    # forgotten at each restart: anyone who knew a login could then lock its owner out everywhere
    # with 10 guesses, the owner's office included, up to an hour at a time and again after each
    # lock. Written at a success, at most once a day per pair, read at start, gone after 30 days.
    """
    CREATE TABLE IF NOT EXISTS auth_known_good (
        login TEXT NOT NULL,                      -- casefolded (acl.logins.login_key)
        address TEXT NOT NULL,                    -- the client's IPv4 address or IPv6 /64 (client_key)
        last_at REAL NOT NULL,                    -- a success there (wall time), rewritten once a day
        PRIMARY KEY (login, address)
    );
    CREATE INDEX IF NOT EXISTS auth_known_good_age ON auth_known_good(last_at);
    """,
    # 59: a company admin's opt-outs, filed under their account: they stop only that account's SMS to
    # the number. On the one shared list (`optouts`), acme's admin who had sent beta's customer a
    # single SMS stopped beta's SMS to it for good (an admin's entry, which the phone's START leaves).
    # The phone's STOP and the operator's entries stay in `optouts`, for every account; so do the
    # company admins' entries made before this migration (they were added as global ones).
    """
    CREATE TABLE IF NOT EXISTS account_optouts (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        number TEXT NOT NULL,                     -- E.164
        created_at REAL NOT NULL,
        UNIQUE (account_id, number)
    );
    CREATE INDEX IF NOT EXISTS account_optouts_page ON account_optouts(account_id, id);
    """,
    # 60: when a long premium SMS's first part came (`parts_at`, as on its whole MO in table mo,
    # migration 33), kept on its money record, which the retention purge keeps while it deletes the
    # row of table mo: billing, `premium stats` and corrections bill a vote by when its phone sent it
    # (`billing_reports.repo.billed_at`), as they do a long reply. By its join, a vote whose part 1
    # came at 23:59:58 on the 31st was billed in the next month, and one the reassembly timeout
    # joined at a time its phone sent nothing. NULL for a one-part SMS; rows from before take it
    # from their row of table mo where the purge left it, within the day billing takes it by.
    """
    ALTER TABLE premium_mo ADD COLUMN parts_at REAL;
    UPDATE premium_mo SET parts_at = (SELECT mo.parts_at FROM mo WHERE mo.id = premium_mo.mo_id)
        WHERE EXISTS (SELECT 1 FROM mo WHERE mo.id = premium_mo.mo_id
            AND mo.parts_at >= mo.received_at - 86400.0);
    """,
    *SINCE_61,
]
