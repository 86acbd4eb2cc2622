"""The store's schema: one function per version step, keyed on `PRAGMA user_version`.

A store at version N is brought up to date by `update_from_N_to_N+1`, then the next step,
and so on, each in its own transaction (`StoreBase._migrate`). A new file starts at 0.

To change the schema, add one function below the last step (above the two lines at the
end of this module), and nothing else:

    def update_from_4_to_5(db: sqlite3.Connection) -> None:
        \"\"\"What changes, and why.\"\"\"
        db.execute("ALTER TABLE ...")

`MIGRATIONS` collects every `update_from_N_to_N+1` function of this module by its name (the
first ten, released long ago, live in `schema_early` and are imported here) and
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

import re
import sqlite3
from collections.abc import Callable, Mapping

from digest.store.next_send import fill_next_send
from digest.store.schema_early import (  # noqa: F401  (collected by name below)
    update_from_0_to_1,
    update_from_1_to_2,
    update_from_2_to_3,
    update_from_3_to_4,
    update_from_4_to_5,
    update_from_5_to_6,
    update_from_6_to_7,
    update_from_7_to_8,
    update_from_8_to_9,
    update_from_9_to_10,
)

Migration = Callable[[sqlite3.Connection], None]


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
