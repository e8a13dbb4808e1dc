"""The database schema: the core tables as version 1 made them, and every version since.

Each entry of `MIGRATIONS` moves the schema up by one version and is applied in its own
transaction; a database newer than this code is refused rather than guessed at. Times are stored
as Unix seconds (REAL) because they are compared on the hot path; money is integer grosze. The
changes since version 1, each with why it was made, are gateway/store/migrations.py's.
"""

from __future__ import annotations

from gateway.store.migrations import SINCE_CORE

# 1: the core queue, accounts and users, DLRs, MOs and the outbox
CORE = """
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        sender TEXT,                              -- originating address; NULL = installation default
        split_mode TEXT NOT NULL DEFAULT 'concatenated',
        transliterate INTEGER NOT NULL DEFAULT 0,
        overflow TEXT NOT NULL DEFAULT 'truncate',
        validity_hours REAL,
        end_marker TEXT,
        confirm INTEGER NOT NULL DEFAULT 0,       -- acceptance confirmation email (R-1.9)
        dlr_mail TEXT NOT NULL DEFAULT 'failed',  -- none | failed | all
        notify_address TEXT,                      -- designated address for bounces instead of the sender
        monthly_limit INTEGER,
        daily_limit INTEGER,
        bulk INTEGER NOT NULL DEFAULT 0,
        quiet_start TEXT,
        quiet_end TEXT,
        suspended_at REAL,
        suspended_reason TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE account_networks (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        cidr TEXT NOT NULL,
        PRIMARY KEY (account_id, cidr)
    );
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        password_hash TEXT,
        monthly_limit INTEGER,
        daily_limit INTEGER,
        created_at REAL NOT NULL
    );
    CREATE TABLE emails (
        id INTEGER PRIMARY KEY,
        account_id INTEGER REFERENCES accounts(id),
        user_id INTEGER REFERENCES users(id),
        mail_from TEXT NOT NULL,
        client_ip TEXT,
        header_message_id TEXT,
        dedup_key TEXT,
        subject TEXT,
        text TEXT NOT NULL,
        automatic TEXT,                           -- machine mail reason: recorded, never sent
        removed TEXT,
        received_at REAL NOT NULL
    );
    CREATE INDEX emails_dedup ON emails(dedup_key);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        email_id INTEGER NOT NULL REFERENCES emails(id),
        account_id INTEGER REFERENCES accounts(id),
        recipient TEXT NOT NULL,
        source TEXT NOT NULL,
        text TEXT NOT NULL,
        coding INTEGER NOT NULL,
        parts_total INTEGER NOT NULL,
        concat_ref INTEGER,
        state TEXT NOT NULL,
        reason TEXT,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        finished_at REAL,
        dedup_key TEXT
    );
    CREATE UNIQUE INDEX messages_dedup ON messages(dedup_key, recipient) WHERE dedup_key IS NOT NULL;
    CREATE INDEX messages_state ON messages(state);
    CREATE INDEX messages_recipient ON messages(recipient, created_at);
    CREATE TABLE parts (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages(id),
        seq INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        destination TEXT NOT NULL,
        source TEXT NOT NULL,
        data_coding INTEGER NOT NULL,
        payload BLOB NOT NULL,
        udh BLOB NOT NULL,
        text TEXT NOT NULL,
        link TEXT,
        smsc_id TEXT,
        submitted_at REAL,
        done_at REAL,
        error TEXT
    );
    CREATE INDEX parts_due ON parts(state, next_attempt_at);
    CREATE INDEX parts_smsc ON parts(link, smsc_id);
    CREATE INDEX parts_message ON parts(message_id);
    CREATE TABLE dlrs (
        id INTEGER PRIMARY KEY,
        link TEXT NOT NULL,
        smsc_id TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        raw TEXT,
        part_id INTEGER REFERENCES parts(id),
        received_at REAL NOT NULL
    );
    CREATE INDEX dlrs_unmatched ON dlrs(link, smsc_id) WHERE part_id IS NULL;
    CREATE TABLE mo (
        id INTEGER PRIMARY KEY,
        link TEXT NOT NULL,
        source TEXT NOT NULL,
        destination TEXT NOT NULL,
        text TEXT NOT NULL,
        data_coding INTEGER NOT NULL DEFAULT 0,
        concat_ref INTEGER,
        concat_total INTEGER,
        concat_seq INTEGER,
        state TEXT NOT NULL DEFAULT 'new',
        received_at REAL NOT NULL
    );
    CREATE INDEX mo_state ON mo(state);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        mail_from TEXT NOT NULL,
        rcpt TEXT NOT NULL,
        content BLOB NOT NULL,
        state TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        message_ref INTEGER,
        created_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
    CREATE TABLE concat_refs (
        destination TEXT PRIMARY KEY,
        next_ref INTEGER NOT NULL
    );
    CREATE TABLE usage (
        scope TEXT NOT NULL,                      -- 'user:<id>' or 'account:<id>'
        period TEXT NOT NULL,                     -- 'YYYY-MM' or 'YYYY-MM-DD'
        parts INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (scope, period)
    ) WITHOUT ROWID;
    """

MIGRATIONS: list[str] = [CORE, *SINCE_CORE]

SCHEMA_VERSION = len(MIGRATIONS)
