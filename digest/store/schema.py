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
]
SCHEMA_VERSION = len(MIGRATIONS)
