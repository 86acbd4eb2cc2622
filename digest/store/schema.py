"""The store's schema: one function per version step, keyed on `PRAGMA user_version`.

A store at version N is brought up to date by `update_from_N_to_N+1`, then the next step,
and so on, each in its own transaction (`StoreBase._migrate`). A new file starts at 0.

To change the schema, add one function below the last step (above the two lines at the
end of this module), and nothing else:

    def update_from_4_to_5(db: sqlite3.Connection) -> None:
        \"\"\"What changes, and why.\"\"\"
        db.execute("ALTER TABLE ...")

`MIGRATIONS` collects every `update_from_N_to_N+1` function of this module by its name and
`SCHEMA_VERSION` follows from it. A step runs one statement per `db.execute` (so a `;`
inside a string literal is safe) and may rewrite rows too; it must not begin or commit a
transaction, nor set `user_version` (the caller does both around it). Foreign keys are
ON and cannot be turned off inside the step's transaction: rebuilding a table by
DROP TABLE would cascade into the tables that reference it (paper_sources, ...).

Never edit a released step (users' files were made by it): add the next one. The upgrade
tests (tests/test_store_upgrade.py) run every step on a file of each older version; when
a version becomes an older one, make its file: add `rows_vN` to
tests/fixtures/store/make_fixtures.py and run it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Mapping

from digest.codec import keywords_to_json
from digest.errors import QueryError
from digest.keywords import parse_keywords
from digest.model import Keyword
from digest.store.next_send import fill_next_send

Migration = Callable[[sqlite3.Connection], None]


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


def update_from_10_to_11(db: sqlite3.Connection) -> None:
    """The installation's own random id, made once, when the store is made (or upgraded
    to this version): delivery ids and Message-IDs carry it, so a rebuilt or restored
    store, or a second installation on the same From domain, never repeats an id that an
    earlier digest had. Deliveries claimed before keep their stored ids."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS installation (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        " WITHOUT ROWID"
    )
    db.execute(
        "INSERT OR IGNORE INTO installation (key, value) VALUES ('id', lower(hex(randomblob(16))))"
    )


def update_from_11_to_12(db: sqlite3.Connection) -> None:
    """Ratings: a reader's "more like this" (+1) or "not for me" (-1) about a paper, one
    per reader and paper (rating again replaces it), with when and where it was given
    (email link, manage page, CLI): what the ranker learns a reader's taste from."""
    db.execute("""
    CREATE TABLE ratings (
        subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
        paper_id      TEXT NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
        vote          INTEGER NOT NULL CHECK (vote IN (-1, 1)),
        via           TEXT NOT NULL DEFAULT 'email',
        rated_at      TEXT NOT NULL,
        PRIMARY KEY (subscriber_id, paper_id)
    ) WITHOUT ROWID""")
    db.execute("CREATE INDEX ratings_paper ON ratings(paper_id)")


def update_from_12_to_13(db: sqlite3.Connection) -> None:
    """`paper_vectors`: each paper's sentence vector for the optional semantic layer
    (`papers-digest[semantic]`), made once at ingest (or by `digest embed`) so that
    ranking never runs the model over a day's papers. `model` names the model and how much
    text it read (`rank.encoder.model_id`): a vector of another model is not comparable and
    is ignored; `data` is the vector as float16 (`rank.dense.encode_vector`)."""
    db.execute(
        "CREATE TABLE paper_vectors (paper_id TEXT PRIMARY KEY"
        " REFERENCES papers(id) ON DELETE CASCADE, model TEXT NOT NULL, data BLOB NOT NULL)"
        " WITHOUT ROWID"
    )


def update_from_13_to_14(db: sqlite3.Connection) -> None:
    """The kept postings (`rank.postings`): the inverted form of the kept terms, so that
    ranking a day for a few profiles reads the postings of their features, not every
    paper's blob. `term_blocks`: the papers kept at once (one ingest's), with the analysis
    `key` and how many low bits of a feature hash pick its bucket; `term_counts`: each
    paper's block and slot, text hash and word counts; `term_postings`: one row a bucket,
    its rowid `block * 65536 + bucket` (a rowid table: rows of a few KB, read by key);
    `postings_state`: the last block number given (numbers are never given again) and
    the paper row the backfill goes on from (NULL: nothing left). The postings of the
    papers already analysed are made after the upgrade, by the next ingest
    (`Store.backfill_postings`): some minutes for a year of papers, which opening an
    upgraded store does not wait for."""
    db.execute(
        "CREATE TABLE term_blocks (block INTEGER PRIMARY KEY, key TEXT NOT NULL,"
        " bits INTEGER NOT NULL)"
    )
    db.execute(
        "CREATE TABLE term_counts (paper_id TEXT PRIMARY KEY"
        " REFERENCES papers(id) ON DELETE CASCADE,"
        " block INTEGER NOT NULL REFERENCES term_blocks(block), slot INTEGER NOT NULL,"
        " text_hash BLOB NOT NULL, title_words INTEGER NOT NULL,"
        " abstract_words INTEGER NOT NULL) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX term_counts_block ON term_counts(block, slot)")
    db.execute("CREATE TABLE term_postings (cell INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    db.execute("CREATE TABLE postings_state (last_block INTEGER NOT NULL, backfill_from INTEGER)")
    db.execute(
        "INSERT INTO postings_state (last_block, backfill_from)"
        " SELECT 0, CASE WHEN EXISTS (SELECT 1 FROM paper_terms) THEN 0 END"
    )


def update_from_14_to_15(db: sqlite3.Connection) -> None:
    """`subscribers.next_send_at`: each reader's next send time (UTC; NULL when they
    cannot be due), kept by every write that changes it (`store.next_send`) and indexed,
    so that finding the readers due now reads those, not the whole list. Filled here for
    the readers there are, from their settings and latest digest."""
    db.execute("ALTER TABLE subscribers ADD COLUMN next_send_at TEXT")
    db.execute(
        "CREATE INDEX subscribers_next_send ON subscribers (next_send_at, id)"
        " WHERE next_send_at IS NOT NULL"
    )
    fill_next_send(db)


def update_from_15_to_16(db: sqlite3.Connection) -> None:
    """`day_index`: the day's paper index, made once for every ranking shard of
    `digest worker` to load (`store.day_index`, `digest.dayindex`)."""
    db.execute(
        """CREATE TABLE day_index (
            key     TEXT PRIMARY KEY,
            low     INTEGER NOT NULL,
            high    INTEGER NOT NULL,
            made_at TEXT NOT NULL,
            data    BLOB NOT NULL
        )"""
    )


def update_from_16_to_17(db: sqlite3.Connection) -> None:
    """`related_terms`: the related-terms table learned from the stored papers
    (`rank.related`, `digest related`), one row a (feature, related feature) under the
    analysis `key` that made the features; `related_state`: how many papers it was
    learned from, and when. Empty until `digest related` runs: ranking without it uses
    the keywords' own words, as before."""
    db.execute(
        "CREATE TABLE related_terms (key TEXT NOT NULL, feature TEXT NOT NULL,"
        " related TEXT NOT NULL, weight REAL NOT NULL,"
        " PRIMARY KEY (key, feature, related)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE related_state (key TEXT PRIMARY KEY, papers INTEGER NOT NULL,"
        " made_at TEXT NOT NULL)"
    )


def update_from_17_to_18(db: sqlite3.Connection) -> None:
    """`keyword_vectors`: each keyword text's sentence vector for the semantic layer, by
    `model` (as `paper_vectors`), kept the first time a ranking needs it: a keyword is
    embedded once, not once per process that ranks (~7 ms each, thousands in a list's
    profiles). `data` is float32 (`rank.dense.encode_keyword`): the vector as made."""
    db.execute(
        "CREATE TABLE keyword_vectors (model TEXT NOT NULL, text TEXT NOT NULL,"
        " data BLOB NOT NULL, PRIMARY KEY (model, text)) WITHOUT ROWID"
    )


def update_from_18_to_19(db: sqlite3.Connection) -> None:
    """`paper_search`: each kept packed blob's searchable feature hashes
    (`rank.searchrows`), under the blob's analysis `key`, so that the archive's search
    index reads some 0.67 KB a paper rather than its 5.6 KB blob; it goes with its blob
    (ON DELETE CASCADE) and is made again with it. `postings_state.search_from`: the
    paper row the backfill of the blobs kept before goes on from (NULL: nothing left),
    made by the next ingest (`Store.backfill_postings`, after the postings' own). A
    store whose postings are still to be backfilled gets its rows with them (a paper
    kept between the upgrade to postings and their backfill has no row: its blob stands
    for it)."""
    db.execute(
        "CREATE TABLE paper_search (paper_id TEXT PRIMARY KEY"
        " REFERENCES paper_terms(paper_id) ON DELETE CASCADE, key TEXT NOT NULL,"
        " data BLOB NOT NULL) WITHOUT ROWID"
    )
    db.execute("ALTER TABLE postings_state ADD COLUMN search_from INTEGER")
    db.execute(
        "UPDATE postings_state SET search_from = CASE WHEN backfill_from IS NULL"
        " AND EXISTS (SELECT 1 FROM paper_terms) THEN 0 END"
    )


def _parsed(typed: list[str]) -> tuple[Keyword, ...]:
    try:
        return parse_keywords([str(t) for t in typed])
    except QueryError:
        return tuple(Keyword(str(t)) for t in typed)


_STEP_NAME = re.compile(r"update_from_(\d+)_to_(\d+)")


def collect_steps(namespace: Mapping[str, object]) -> list[Migration]:
    """The `update_from_N_to_N+1` functions of `namespace`, in order from 0.

    A step that skips a version, or a gap in the chain, is a programming error: refused
    at import, so a store is never left between two versions by a missing step.
    """
    steps: dict[int, Migration] = {}
    for name, value in namespace.items():
        match = _STEP_NAME.fullmatch(name)
        if match is None or not callable(value):
            continue
        start, end = int(match[1]), int(match[2])
        if end != start + 1:
            raise RuntimeError(f"{name}: a schema step goes from one version to the next")
        steps[start] = value
    missing = sorted(set(range(max(steps, default=-1) + 1)) - set(steps))
    if missing:
        raise RuntimeError(f"no schema step from version {missing[0]} to {missing[0] + 1}")
    return [steps[n] for n in range(len(steps))]


# Keep these two lines last: they collect the steps defined above.
MIGRATIONS: list[Migration] = collect_steps(globals())
SCHEMA_VERSION = len(MIGRATIONS)
