"""The store's schema, one migration per version (`PRAGMA user_version`).

`MIGRATIONS[n]` takes a store from version n to n+1; statements are separated by `;`.
Never edit a released migration: add the next one.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 0 -> 1: papers and where they were seen.
    """
    CREATE TABLE papers (
        id            TEXT PRIMARY KEY,
        folded_title  TEXT NOT NULL UNIQUE,
        title         TEXT NOT NULL,
        abstract      TEXT NOT NULL DEFAULT '',
        published     TEXT,
        upvotes       INTEGER NOT NULL DEFAULT 0,
        authors_count INTEGER,
        organization  TEXT,
        arxiv_id      TEXT UNIQUE,
        url           TEXT,
        first_seen    TEXT NOT NULL,
        last_seen     TEXT NOT NULL
    );
    CREATE INDEX papers_first_seen ON papers(first_seen);
    CREATE TABLE paper_sources (
        paper_id TEXT NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
        source   TEXT NOT NULL,
        PRIMARY KEY (paper_id, source)
    ) WITHOUT ROWID;
    """,
    # 1 -> 2: subscribers, their profiles, deliveries (exactly once), the sent-ledger, locks.
    """
    CREATE TABLE subscribers (
        id              INTEGER PRIMARY KEY,
        email           TEXT NOT NULL UNIQUE,
        status          TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
        timezone        TEXT NOT NULL DEFAULT 'UTC',
        send_at         TEXT NOT NULL DEFAULT '07:00',
        frequency       TEXT NOT NULL DEFAULT 'daily' CHECK (frequency IN ('daily', 'weekly')),
        notify_empty    INTEGER NOT NULL DEFAULT 0,
        created_at      TEXT NOT NULL,
        confirmed_at    TEXT,
        unsubscribed_at TEXT
    );
    CREATE TABLE subscriber_profiles (
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
        name          TEXT NOT NULL,
        keywords      TEXT NOT NULL,
        exclude       TEXT NOT NULL DEFAULT '[]',
        max_items     INTEGER,
        min_score     REAL,
        PRIMARY KEY (subscriber_id, name)
    ) WITHOUT ROWID;
    CREATE TABLE deliveries (
        id              TEXT PRIMARY KEY,
        subscriber_id   INTEGER NOT NULL REFERENCES subscribers(id),
        digest_date     TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'retry')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        reason          TEXT NOT NULL DEFAULT '',
        window_start    TEXT,
        window_end      TEXT NOT NULL,
        content         TEXT NOT NULL,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        sent_at         TEXT,
        UNIQUE (subscriber_id, digest_date)
    );
    CREATE INDEX deliveries_state ON deliveries(state, next_attempt_at);
    CREATE TABLE sent_papers (
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
        paper_id      TEXT NOT NULL,
        delivery_id   TEXT NOT NULL REFERENCES deliveries(id),
        PRIMARY KEY (subscriber_id, paper_id)
    ) WITHOUT ROWID;
    CREATE TABLE locks (
        name       TEXT PRIMARY KEY,
        owner      TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )
    """,
    # 2 -> 3: per-source fetch state (ETag/Last-Modified) and the last outcome.
    """
    CREATE TABLE fetch_state (
        source     TEXT PRIMARY KEY,
        url        TEXT NOT NULL,
        state      TEXT NOT NULL DEFAULT '{}',
        fetched_at TEXT,
        status     TEXT NOT NULL DEFAULT '',
        error      TEXT NOT NULL DEFAULT ''
    )
    """,
    # 3 -> 4: a delivery remembers the newest paper row it considered, so the next digest
    # takes exactly the papers that arrived after it (whatever their first_seen says).
    """
    ALTER TABLE deliveries ADD COLUMN papers_upto INTEGER
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
