"""Migrations 61 onwards, each with why it was made: the end of `migrations.SINCE_CORE`, which lists
them after its own (gateway/store/migrations.py had reached the size a module is kept under).
Appended to, never edited: a database records the version it reached.
"""

from __future__ import annotations

SINCE_61: list[str] = [
    # 61: the panel's premium page for a month still open regrouped all its votes at each load, on
    # the reader's one thread (0.8-2.4 s with 300,000 votes a month, every other admin's page waiting):
    # by the index of `received_at` or of (account_id, received_at), then each vote's row (they are
    # wide, with their text), then a temporary B-tree for the GROUP BY. The two indexes below hold
    # every column `premium.stats.grouped` reads, so the rows are not read; and the page keeps a
    # month's grouping and adds the votes stored since (`web.premiumread`), as long as no vote stored
    # before changed what it counts: `premium_generation` takes a new random value whenever one
    # does (a vote claimed, released or moved to another account, a vote deleted by hand), in the
    # same transaction, as `settings_generation` does for the settings. The users of an account were
    # read by scanning every user (the account dashboard, the company admin's domain check):
    # indexed by account now. The indexes take seconds at the upgrade: 1.7 s on a copy of a year
    # of 1.2M mails, 340,000 votes and 3,000 users, 5 s with its pages not yet in memory.
    """
    CREATE INDEX IF NOT EXISTS users_account ON users(account_id);
    CREATE INDEX IF NOT EXISTS premium_mo_month
        ON premium_mo(received_at, service_id, number, parts_at, follows, parts, price, commission);
    CREATE INDEX IF NOT EXISTS premium_mo_account_month
        ON premium_mo(account_id, received_at, service_id, number, parts_at, follows, parts, price,
            commission);
    CREATE TABLE IF NOT EXISTS premium_generation (value INTEGER NOT NULL);
    INSERT INTO premium_generation SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM premium_generation);
    CREATE TRIGGER IF NOT EXISTS premium_mo_update_generation
        AFTER UPDATE OF received_at, service_id, account_id, number, parts_at, follows, parts, price,
            commission ON premium_mo
    BEGIN UPDATE premium_generation SET value = random(); END;
    CREATE TRIGGER IF NOT EXISTS premium_mo_delete_generation AFTER DELETE ON premium_mo
    BEGIN UPDATE premium_generation SET value = random(); END;
    """,
    # 62: one index of a part's link, state and SMSC id in place of parts_smsc (link, smsc_id) and
    # parts_counts (link, state) WHERE id > 0: each changed at steps of every part's life (the
    # second at each), and every lookup of a receipt by its SMSC id names the part's state too. A
    # part's life cost 324 k instructions and 12.8 WAL frames with both, 291 k and 10.4 without
    # parts_smsc. The receipts' match now goes straight to its part by (link, state, id); on
    # parts_smsc it did for one link only, and by parts_due (every part awaiting a report) as soon
    # as the link had another bind or a former name. The /metrics counts read it as they read
    # parts_counts, whole and covering. Built at the upgrade in the pages the two free: 2.0-2.5 s of
    # CPU with a million parts kept (5-8 s on a machine busy with other work).
    """
    DROP INDEX IF EXISTS parts_smsc;
    DROP INDEX IF EXISTS parts_counts;
    CREATE INDEX IF NOT EXISTS parts_link_state_smsc ON parts(link, state, smsc_id);
    """,
    # 63: whether an MO is the SMSC delivering an earlier copy again (`store.redelivery`), asked of
    # every MO on the event loop's thread, read every MO of the phone's last day (`mo_copies`) to
    # compare its text: 1.6 / 7.0 / 19.4 ms a lookup with 1,000 / 5,000 / 15,000 from one phone,
    # and an MO flood from one number stalled the daemon (the health check and SMTP answered after
    # seconds). `mo_texts` finds the phone's latest whole MO of the same text, newest first by its
    # id; `mo_stamps` the phone's MO of a CIMD2 stamp (060) without reading its texts, which a flood
    # of one word shares: some 40-80 steps of SQLite's machine whatever the phone sent (120,000 with
    # 15,000 texts from it, 650,000 with 15,000 of one word stamped). `mo_copies` stays for the
    # listings by number: both indexes are partial, with a condition only the lookups name (every
    # row has a text: `text IS NOT NULL` keeps the others off it), so that the listings, which lead
    # by the source too, keep to the smaller `mo_copies`. Each MO inserted writes an entry or two
    # more, and its lookups, once an MO now, cost less than that for a phone with few MOs.
    """
    CREATE INDEX IF NOT EXISTS mo_texts ON mo(source, destination, text)
        WHERE text IS NOT NULL AND state NOT IN ('segment', 'joined');
    CREATE INDEX IF NOT EXISTS mo_stamps ON mo(source, smsc_time) WHERE smsc_time IS NOT NULL;
    """,
    # 64: the SMS an answer answers (its `messages.id`), recorded when the MO is settled with its
    # conversation (`ConversationsRepo.settle_mo`, `settle_kept`). The copy to the fallback address
    # of an answer whose mail the relay refused was made from the conversation row as it is then,
    # which the user's next mail to the phone moves on: it quoted that newer SMS as the one the
    # phone answered. NULL for MOs settled before, whose copies quote the row as they did.
    """
    ALTER TABLE mo ADD COLUMN answered_message_id INTEGER;
    """,
    # 65: the parts of the phone's SMS a whole MO that came with no concatenation holds (an SMSC that
    # joined a long SMS delivers it as one: SMPP's message_payload, CIMD2's one 033), counted at its
    # receipt (`gateway.store.moparts.counted`), and the protocol of the link it came by. The billing
    # file's reply lines counted such an MO as one part while its premium vote was billed at the parts
    # the phone's split needed, and the store guessed the protocol, which the DCS is read by, from
    # CIMD2's stamp (060): a CIMD2 MO without a usable one was counted by SMPP's table, where 2 is
    # binary octets and not the GSM alphabet (3 parts for 2). A link may be renamed, removed or change
    # protocol later, so the protocol is kept on the row. An older whole MO without a stamp is CIMD2's
    # when the last start noted its link's name with a CIMD2 bind (`gateway.linkbinds`, kept for a
    # link since removed or renamed; a link whose type changed under its name is taken as it was last
    # started); the others are read as before (a stamp is CIMD2's, no stamp SMPP's), so only those
    # are written: one pass over the table, 0.25 s of CPU a million MOs, 1.2 s when a third of them
    # are CIMD2's without a stamp. Older MOs' parts are counted from their text when read, not here:
    # SQL cannot run the phone's split.
    """
    ALTER TABLE mo ADD COLUMN protocol TEXT;
    ALTER TABLE mo ADD COLUMN parts INTEGER;
    UPDATE mo SET protocol = 'cimd2'
        WHERE smsc_time IS NULL AND seqs IS NULL AND COALESCE(concat_total, 1) <= 1
        AND state NOT IN ('segment', 'joined', 'duplicate')
        AND link IN (SELECT substr(key, 11) FROM billing_state
            WHERE key >= 'link_bind/' AND key < 'link_bind0' AND value LIKE 'cimd2|%');
    """,
    # 66: the failures of one mail share one bounce (`gateway.bouncegroup`): a mail to forty numbers of
    # which twelve failed made twelve bounces. `bounced` holds the SMS ids (comma-separated, in the
    # order they failed) a bounce not yet sent names, so that the next failure of its mail rewrites
    # it with them all; NULL for every other mail and for bounces queued before. A bounce of several
    # numbers has the kind `dsn-group` and names no single SMS (`message_ref`): erasing a phone's data
    # finds it by what it says, as the other mails naming several numbers, so that index takes it in.
    """
    ALTER TABLE outbox ADD COLUMN bounced TEXT;
    DROP INDEX IF EXISTS outbox_naming;
    CREATE INDEX IF NOT EXISTS outbox_naming ON outbox(kind)
        WHERE kind IN ('not-sent', 'bounce-forward', 'dsn-group');
    """,
    # 67: the identical-text rule (`PolicyRepo.identical_count`) counts an SMS toward the day it
    # reached an SMSC, which only its parts' `submitted_at` says and no index held: it counted the sent
    # ones toward their mail's day, so three held overnight for quiet hours and three more accepted
    # after the 08:00 release all reached the phone that day. `parts_sent` holds a number's parts by
    # their submit time, with their message ids, and only those an SMSC took (a part waits without
    # an entry): EXPLAIN QUERY PLAN of the count reads `SEARCH s USING COVERING INDEX parts_sent
    # (destination=? AND submitted_at>?)`, then each message by its rowid, and still no SCAN. Each
    # part costs 6 more steps of SQLite's machine at its insert and 15 at its submit, none at its
    # receipt (89/103/104 before); the count, one index range more a recipient, cost 170 steps
    # instead of 113 for a phone with 5 SMS a day, 7,200 instead of 3,400 for one with 500 (30 days
    # kept, 100,000 of other phones). Built at the upgrade: 0.9 s of CPU, 34 MB, with a million parts.
    """
    CREATE INDEX IF NOT EXISTS parts_sent ON parts(destination, submitted_at, message_id)
        WHERE submitted_at IS NOT NULL;
    """,
    # 68: a confirmation naming several numbers (`gateway.notifygroup`: "SMS delivered to N numbers")
    # had the kind of a bounce naming several, `dsn-group`: `queue show`, the panel, `outbox list`
    # and the log called it a bounce. It has its own, `notify-group` (`outboxgroups.CONFIRM_GROUP_KIND`),
    # found when a phone's data is erased as the grouped bounce is, so the index of such kinds names
    # it. Those queued or sent before are told by what the row holds: a plain notice comes from the
    # gateway's address (a bounce from the null sender); a NOTIFY=SUCCESS receipt is a report whose
    # fields say `Action: delivered` or `relayed` and never `failed` (a bounce's say `failed`, and
    # only a bounce gives the SMS text back, which might hold any words); one whose content was erased
    # at a phone's request says neither, and goes by its first SMS's end, as the rows are grouped. One
    # pass over the rows of that kind, off the index of kinds (its predicate repeated: SQLite takes a
    # partial index only for a statement that names it; without, a scan of the whole outbox).
    """
    DROP INDEX IF EXISTS outbox_naming;
    CREATE INDEX IF NOT EXISTS outbox_naming ON outbox(kind)
        WHERE kind IN ('not-sent', 'bounce-forward', 'dsn-group', 'notify-group');
    UPDATE outbox SET kind = 'notify-group'
        WHERE kind IN ('not-sent', 'bounce-forward', 'dsn-group', 'notify-group') AND kind = 'dsn-group'
        AND (mail_from <> ''
            OR (instr(content, CAST('Action: failed' AS BLOB)) = 0
                AND (instr(content, CAST('Action: delivered' AS BLOB)) > 0
                    OR instr(content, CAST('Action: relayed' AS BLOB)) > 0))
            OR (instr(content, CAST('Action: ' AS BLOB)) = 0
                AND (SELECT state IN ('delivered', 'unreported') FROM messages
                    WHERE id = CAST(bounced AS INTEGER))));
    """,
    # 69: when a part was claimed (`QueueRepo.claim_due`), written in the statement that claims it: an
    # answer that comes before the SMSC's answer to a submit waits for it (`conversations.waiting`), and
    # no phone answers an SMS within seconds of its going (`reached.REPLY_SECONDS`). Without the claim
    # time, a part claimed late behind a backlog or an outage counted from when it was due: an answer
    # to an older SMS that came just after the part went waited for it, and went to its user. While
    # its note says an earlier submit may have reached the phone, a claim keeps the time of the one
    # that went unanswered: the phone may have had it since. NULL for parts claimed before.
    """
    ALTER TABLE parts ADD COLUMN claimed_at REAL;
    """,
    # 70: the dedup key's index of mails holds machine mail's alone. Only `recorded_before` reads it (a
    # bounce delivered again is recorded again but forwarded once, R-1.8), and it asks of machine mail
    # only; a person's mail is deduplicated by its messages (`messages_dedup`). Every mail's key is a
    # random hash, so each mail wrote a page of this index of its own: 0.67 of the ~10 pages a mail
    # writes, ~11 k instructions a mail (bench/storelife.py), and 80 MB a million mails on disk. The
    # new index is a few pages; the old one's pages go to the free list, reused by the next writes.
    """
    DROP INDEX IF EXISTS emails_dedup;
    CREATE INDEX emails_dedup ON emails(dedup_key) WHERE automatic IS NOT NULL;
    """,
    # 71: when a part was last claimed, written by the statement that claims it, beside `claimed_at`
    # (which keeps the first claim while the part's note says an earlier submit may have reached the
    # phone). A part waiting to go again holds an answer within the wait of its last submit
    # (`conversations.inflight`); the running dispatcher knows that submit, but after a crash or a stop
    # only the stored times are left, and the first claim stood for the last: a part sent again just
    # before a crash held no answer, which went at once to the SMS the phone had before, another
    # company's maybe. A claim whose submit never reached the phone (no link up, a throttle, claimed
    # ahead and put back) is undone as its attempt is: `prior_claimed_at`, the last claim before it,
    # comes back (else every claim of a part waiting for its link down held answers for the wait).
    # NULL for parts claimed before: their claim time stands for both, as before.
    """
    ALTER TABLE parts ADD COLUMN last_claimed_at REAL;
    ALTER TABLE parts ADD COLUMN prior_claimed_at REAL;
    """,
    # 72: an answer mail's own Message-ID (`header_message_id`), written by the statement that queues
    # it (`gateway.store.outboxmailid`), with an index of the rows that have one. A bounce quoting an
    # answer-form id (`<….sms-reply@host>`) was matched by looking for the id in the content of every
    # answer mail of the look-back days (`gateway.answerbounce`): no index could serve it, so each
    # bounce, forged ones too, read 10 days of answer mails whole on the loop's thread: 400 ms and
    # 500,000 steps of SQLite's machine with 50,000 of them (54 MB; bench/answer_bounce.py), 16 steps
    # now. Only mails that carry an answer (`mo_ref`) get one: no other mail is looked for by its id.
    # The answer mails queued within those 10 days get theirs here, from their content, so that the
    # lookup alone serves from the upgrade on (else a scan of the rows without one, and the cost it is
    # there to end, stayed for 10 days): the first Message-ID field at a line's start, maybe folded
    # after its colon as the email package writes a long one. One pass over the outbox's age index;
    # each row is written again whole: 0.9 s of CPU (3.7 s here) for 50,000 answer mails in 10 days.
    # Older ones are past the look-back and keep NULL.
    """
    ALTER TABLE outbox ADD COLUMN header_message_id TEXT;
    CREATE INDEX IF NOT EXISTS outbox_header_message_id ON outbox(header_message_id)
        WHERE header_message_id IS NOT NULL;
    UPDATE outbox SET header_message_id = (
        SELECT id FROM (
            SELECT CAST(substr(field, lt, gt - lt + 1) AS TEXT) AS id, substr(field, 1, lt - 1) AS lead
            FROM (SELECT field, instr(field, '<') AS lt, instr(field, '>') AS gt
                FROM (SELECT substr(content, instr(content, CAST(char(10) || 'Message-ID:' AS BLOB)) + 12,
                    300) AS field))
            WHERE lt > 0 AND gt > lt + 3)
        WHERE trim(lead, char(9, 10, 13, 32)) = '' AND NOT id GLOB '*[' || char(9, 10, 13, 32) || ']*')
        WHERE state IN ('queued', 'active', 'sent', 'failed') AND mo_ref IS NOT NULL
        AND created_at >= (julianday('now') - 2440587.5) * 86400.0 - 10 * 86400.0
        AND instr(content, CAST(char(10) || 'Message-ID:' AS BLOB)) > 0;
    """,
    # 73: a copy of a mail is its retry only within `accepting.RETRY_WINDOW_SECONDS`: a
    # relaying server's short queue id repeats, and a device may send one Message-ID on every mail,
    # so a key seen again after the window is a new mail, whose rows hold the key again. The unique
    # index of (dedup_key, recipient) refused those rows (a 451 for ever); its place is taken by one
    # of (dedup_key, created_at), which serves the lookup within the window as one range. 2.8 s for
    # a million messages at the upgrade (bench/dedup_window.py); a lookup takes 13 VM steps, 9 before.
    """
    DROP INDEX IF EXISTS messages_dedup;
    CREATE INDEX messages_dedup ON messages(dedup_key, created_at) WHERE dedup_key IS NOT NULL;
    """,
    # 74: a part sent again after its submit went unanswered and taken then names the link of that
    # submit (`resent_after`; '' for one claimed before a restart with no answer recorded): the phone
    # may have the SMS twice, and only a log line and the link's counter said so, while `queue show`
    # and the panel's message page said "delivered, attempts 2". Written by the statement that
    # records the acceptance (`SubmittedRepo.mark_submitted`), left out of it for a part sent once.
    # Adding a column rewrites no row: the upgrade writes the schema's page alone.
    """
    ALTER TABLE parts ADD COLUMN resent_after TEXT;
    """,
    # 75: the answer mails to an address by their time. Before each mail that answers a phone, the loop
    # guard looks for the phone's latest answer mail to that sender within ten minutes
    # (`loopguard._answer_between`): through the age index it read every outbox row of those ten
    # minutes and sorted the ones it kept, 52 ms with 30,000 of them (bench/loopguard_lookup.py);
    # now the few answer mails to that sender. Rows of other kinds are not in it.
    """
    CREATE INDEX IF NOT EXISTS outbox_replies ON outbox(rcpt COLLATE NOCASE, created_at) WHERE kind = 'reply';
    """,
    # 76: each phone's MOs by time. The loop guard's lookup of the phone's latest answer mail to a
    # sender (`loopguard._answer_between`) read, through 75's index, every answer mail to that address of
    # ten minutes with its MO: 3,000 to a helpdesk that every phone answers to. It starts from the phone's
    # few MOs of the window now; `mo_copies` has the number the SMS went to between phone and time.
    # `id > 0` (every row) keeps it to the statements that name it: present to all, it moved the MO
    # intake's lookups of a long SMS's segments off `mo_segments` onto `mo_copies`.
    """
    CREATE INDEX IF NOT EXISTS mo_phone_times ON mo(source, received_at) WHERE id > 0;
    """,
    # 77: 75's index goes. The loop guard's lookup, its only reader, starts from the phone's MOs since
    # 76; no other statement's plan takes it (an answer mail's address is matched in any case by the
    # loop guard alone), and each answer mail queued wrote an entry into it.
    """
    DROP INDEX IF EXISTS outbox_replies;
    """,
    # 78: an opt-out's row changed in its time or source alone leaves the settings generation as it was.
    # A phone's repeated STOP moves its entry's time (a premium answer is withdrawn only by a STOP since
    # its vote), and the update trigger bumped the generation for it: every process dropped its cached
    # settings and read them again (some 55 ms with 100,000 numbers listed), though the numbers the
    # cache holds, the only column it reads, did not change.
    """
    DROP TRIGGER IF EXISTS optouts_update_generation;
    CREATE TRIGGER optouts_update_generation AFTER UPDATE OF number ON optouts
    BEGIN UPDATE settings_generation SET value = random(); END;
    """,
    # 79: a number added to the shared opt-out list gives `optouts_added` a new random value, and the
    # settings generation keeps its own. Each phone's first STOP bumped the generation: every process
    # dropped all its cached settings and read the whole list again (some 55 ms with 100,000 numbers
    # listed), for each STOP of a burst. A process now reads only the rows past the last one it holds
    # (`gateway.store.cache`); a number taken off or changed still bumps the generation.
    """
    ALTER TABLE settings_generation ADD COLUMN optouts_added INTEGER NOT NULL DEFAULT 0;
    DROP TRIGGER IF EXISTS optouts_insert_generation;
    CREATE TRIGGER optouts_insert_generation AFTER INSERT ON optouts
    BEGIN UPDATE settings_generation SET optouts_added = random(); END;
    """,
]
