"""The store's first ten schema steps, a new file to version 10: released, never edited.

Kept apart from `schema` (which collects them with the later steps and says how to add
one) only to keep each module short; `schema` re-exports them, so every step is still
`digest.store.schema.update_from_N_to_N+1`.
"""

from __future__ import annotations

import json
import sqlite3

from digest.codec import keywords_to_json
from digest.errors import QueryError
from digest.keywords import parse_keywords
from digest.model import Keyword


def update_from_0_to_1(db: sqlite3.Connection) -> None:
    """Papers and where they were seen."""
    db.execute("""
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
    )""")
    db.execute("CREATE INDEX papers_first_seen ON papers(first_seen)")
    db.execute("""
    CREATE TABLE paper_sources (
        paper_id TEXT NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
        source   TEXT NOT NULL,
        PRIMARY KEY (paper_id, source)
    ) WITHOUT ROWID""")


def update_from_1_to_2(db: sqlite3.Connection) -> None:
    """Subscribers, their profiles, deliveries (exactly once), the sent-ledger, locks."""
    db.execute("""
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
    )""")
    db.execute("""
    CREATE TABLE subscriber_profiles (
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
        name          TEXT NOT NULL,
        keywords      TEXT NOT NULL,
        exclude       TEXT NOT NULL DEFAULT '[]',
        max_items     INTEGER,
        min_score     REAL,
        PRIMARY KEY (subscriber_id, name)
    ) WITHOUT ROWID""")
    db.execute("""
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
    )""")
    db.execute("CREATE INDEX deliveries_state ON deliveries(state, next_attempt_at)")
    db.execute("""
    CREATE TABLE sent_papers (
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
        paper_id      TEXT NOT NULL,
        delivery_id   TEXT NOT NULL REFERENCES deliveries(id),
        PRIMARY KEY (subscriber_id, paper_id)
    ) WITHOUT ROWID""")
    db.execute("""
    CREATE TABLE locks (
        name       TEXT PRIMARY KEY,
        owner      TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""")


def update_from_2_to_3(db: sqlite3.Connection) -> None:
    """Per-source fetch state (ETag/Last-Modified) and the last outcome."""
    db.execute("""
    CREATE TABLE fetch_state (
        source     TEXT PRIMARY KEY,
        url        TEXT NOT NULL,
        state      TEXT NOT NULL DEFAULT '{}',
        fetched_at TEXT,
        status     TEXT NOT NULL DEFAULT '',
        error      TEXT NOT NULL DEFAULT ''
    )""")


def update_from_3_to_4(db: sqlite3.Connection) -> None:
    """A delivery remembers the newest paper row it considered, so the next digest takes
    exactly the papers that arrived after it (whatever their first_seen says)."""
    db.execute("ALTER TABLE deliveries ADD COLUMN papers_upto INTEGER")


def update_from_4_to_5(db: sqlite3.Connection) -> None:
    """Profiles are stored parsed: keywords and exclusions become JSON lists of
    {text, phrase, weight} (they were the strings a person typed, parsed again on every
    send). `-term` keywords join the exclusions, as `rank.make_profile` does. A row that
    does not parse is kept as it was typed, each string a plain term, never dropped."""
    rows = db.execute(
        "SELECT subscriber_id, name, keywords, exclude FROM subscriber_profiles"
    ).fetchall()
    for subscriber_id, name, keywords, exclude in rows:
        positive, negative = [], list(_parsed(json.loads(exclude)))
        for keyword in _parsed(json.loads(keywords)):
            if keyword.text.startswith("-") and len(keyword.text) > 1:
                negative.append(Keyword(keyword.text[1:], keyword.phrase, keyword.weight))
            else:
                positive.append(keyword)
        db.execute(
            "UPDATE subscriber_profiles SET keywords = ?, exclude = ?"
            " WHERE subscriber_id = ? AND name = ?",
            (
                keywords_to_json(tuple(positive)),
                keywords_to_json(tuple(negative)),
                subscriber_id,
                name,
            ),
        )


def update_from_5_to_6(db: sqlite3.Connection) -> None:
    """Papers remember when they arrived in this store (`arrived_at`, UTC): a digest holds
    what arrived after the reader's last one, whatever date the source printed. For rows
    from before, their first_seen is the best guess there is. And `frozen_items`."""
    db.execute("ALTER TABLE papers ADD COLUMN arrived_at TEXT")
    db.execute("UPDATE papers SET arrived_at = first_seen")
    db.execute("CREATE INDEX papers_arrived_at ON papers(arrived_at)")
    # Compact claims: a delivery's content refers to item records (a paper as it was sent,
    # its matches and snippets) kept once for every reader who got it.
    db.execute("CREATE TABLE frozen_items (key TEXT PRIMARY KEY, item TEXT NOT NULL) WITHOUT ROWID")


def update_from_6_to_7(db: sqlite3.Connection) -> None:
    """`paper_terms`: each paper's analysed text (an opaque blob of `digest.rank.terms`),
    made once at ingest so that ranking does not analyse the same papers every day.
    `key` names the analysis that made it; a blob of another analysis is ignored."""
    db.execute(
        "CREATE TABLE paper_terms (paper_id TEXT PRIMARY KEY"
        " REFERENCES papers(id) ON DELETE CASCADE, key TEXT NOT NULL, data BLOB NOT NULL)"
    )


#: The papers table from version 8 on; `update_from_7_to_8` says why it was rebuilt.
_PAPERS_V8 = """
    CREATE TABLE papers_v8 (
        id            TEXT PRIMARY KEY,
        folded_title  TEXT NOT NULL,
        title         TEXT NOT NULL,
        abstract      TEXT NOT NULL DEFAULT '',
        published     TEXT,
        upvotes       INTEGER NOT NULL DEFAULT 0,
        authors_count INTEGER,
        organization  TEXT,
        arxiv_id      TEXT UNIQUE,
        url           TEXT,
        first_seen    TEXT NOT NULL,
        last_seen     TEXT NOT NULL,
        arrived_at    TEXT,
        authors       TEXT NOT NULL DEFAULT '[]',
        summary       TEXT NOT NULL DEFAULT '',
        keywords      TEXT NOT NULL DEFAULT '[]',
        pdf_url       TEXT,
        code_url      TEXT,
        code_stars    INTEGER,
        project_url   TEXT,
        thumbnail_url TEXT,
        comments      INTEGER,
        comment       TEXT NOT NULL DEFAULT '',
        version       INTEGER,
        doi           TEXT
    )"""
_PAPERS_V7_COLUMNS = (
    "id, folded_title, title, abstract, published, upvotes, authors_count, organization,"
    " arxiv_id, url, first_seen, last_seen, arrived_at"
)


def update_from_7_to_8(db: sqlite3.Connection) -> None:
    """What sources say beyond title and abstract: author names (JSON list), a summary,
    keywords (JSON list), links to the PDF, code (and its stars), project page and
    thumbnail, a comments count, the arXiv comment and version, the DOI.

    And two papers may share a title (`folded_title` is no longer UNIQUE): different
    links or ids are different papers. SQLite drops a constraint only by rebuilding the
    table, and dropping `papers` cascades into `paper_sources` and `paper_terms`, so
    their rows are kept aside and put back. Row ids are copied: they are arrival order.
    """
    kept = {"paper_sources": "paper_id, source", "paper_terms": "paper_id, key, data"}
    for table, columns in kept.items():
        db.execute(f"CREATE TEMP TABLE kept_{table} AS SELECT {columns} FROM {table}")
    db.execute(_PAPERS_V8)
    db.execute(
        f"INSERT INTO papers_v8 (rowid, {_PAPERS_V7_COLUMNS})"
        f" SELECT rowid, {_PAPERS_V7_COLUMNS} FROM papers"
    )
    db.execute("DROP TABLE papers")
    db.execute("ALTER TABLE papers_v8 RENAME TO papers")
    for table, columns in kept.items():
        db.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM kept_{table}")
        db.execute(f"DROP TABLE kept_{table}")
    db.execute("CREATE INDEX papers_first_seen ON papers(first_seen)")
    db.execute("CREATE INDEX papers_arrived_at ON papers(arrived_at)")
    db.execute("CREATE INDEX papers_folded_title ON papers(folded_title)")
    db.execute("CREATE INDEX papers_doi ON papers(doi)")


def update_from_8_to_9(db: sqlite3.Connection) -> None:
    """The sent-ledger moves into the delivery that sent it: `deliveries.paper_ids`, a
    JSON list, one row a digest instead of one row a paper (a big list claims hundreds
    of thousands of papers a day). The planner reads the ledgers that can hold a window's
    papers by `papers_upto` (a paper of row r is only in digests whose papers_upto >= r),
    indexed, instead of scanning every paper ever sent; `digest_date` is indexed for
    "who has a digest for this day"."""
    db.execute("ALTER TABLE deliveries ADD COLUMN paper_ids TEXT NOT NULL DEFAULT '[]'")
    ledgers: dict[str, list[str]] = {}
    for delivery_id, paper_id in db.execute(
        "SELECT delivery_id, paper_id FROM sent_papers ORDER BY delivery_id, paper_id"
    ):
        ledgers.setdefault(delivery_id, []).append(paper_id)
    db.executemany(
        "UPDATE deliveries SET paper_ids = ? WHERE id = ?",
        [(json.dumps(ids, ensure_ascii=False), did) for did, ids in ledgers.items()],
    )
    db.execute("DROP TABLE sent_papers")
    db.execute("CREATE INDEX deliveries_upto ON deliveries(papers_upto)")
    db.execute("CREATE INDEX deliveries_day ON deliveries(digest_date)")


def update_from_9_to_10(db: sqlite3.Connection) -> None:
    """A confirmed reader can pause their digests (the manage page) and resume them:
    `paused_at` set means paused. Status keeps its three values (its CHECK stays), and
    the store reports a paused confirmed reader as status "paused", which the planner
    does not send to."""
    db.execute("ALTER TABLE subscribers ADD COLUMN paused_at TEXT")


def _parsed(typed: list[str]) -> tuple[Keyword, ...]:
    try:
        return parse_keywords([str(t) for t in typed])
    except QueryError:
        return tuple(Keyword(str(t)) for t in typed)
