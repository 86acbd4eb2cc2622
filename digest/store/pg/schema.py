"""The PostgreSQL schema: the same tables and columns as the SQLite one at the same
version, with PostgreSQL's types, and steps keyed on the version in `schema_version`.

PostgreSQL support arrived at SQLite's version 12: a new database gets version 12 in one
step (`update_from_0_to_12`). From then on a schema change adds `update_from_N_to_N+1`
here as well as in `store.schema` (a test fails until both reach `SCHEMA_VERSION`). The
steps run in one transaction under `pg_advisory_xact_lock` (`PgBase._migrate`): two
processes starting on a new database take turns, and the second finds it made.

What differs from SQLite, and why:

- times are `timestamptz`, days `date` (read back as the codec's ISO text);
- text that is compared or sorted is `COLLATE "C"`: byte order, as SQLite's, whatever
  the database's locale (and faster);
- `papers.rowid` is a column (SQLite's implicit rowid): the arrival order of papers,
  from an identity; ingests take turns (`PgBase._serialize`) so that rows commit in
  the order of their numbers and a high-water mark never skips one;
- `deliveries` is partitioned by month of `digest_date` (`store.pg.claims` makes each
  partition when a claim first needs it): a day's claims, the planner's "who has a
  digest since" and a reader's latest digest each read one or two partitions, however
  many years of history there are, and old months can be detached and archived whole.
  A key of a partitioned table must hold the partition key, so the primary key is
  (id, digest_date) and `claim_deliveries` checks a delivery id across days itself;
- leases are session advisory locks (`store.pg.leases`); `locks` only says who holds one;
- `send_rate` (from version 15) is the workers' token bucket per sending account
  (`store.pg.work`): only a PostgreSQL store has workers. `day_index` (16), which they
  share, is in both (one `Store` interface), used by the workers only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from digest.store.base import Connection
from digest.store.next_send import fill_next_send

_TABLES_V12 = (
    """CREATE TABLE papers (
        rowid         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        id            text COLLATE "C" PRIMARY KEY,
        folded_title  text COLLATE "C" NOT NULL,
        title         text NOT NULL,
        abstract      text NOT NULL DEFAULT '',
        published     date,
        upvotes       bigint NOT NULL DEFAULT 0,
        authors_count bigint,
        organization  text,
        arxiv_id      text COLLATE "C" UNIQUE,
        url           text,
        first_seen    timestamptz NOT NULL,
        last_seen     timestamptz NOT NULL,
        arrived_at    timestamptz,
        authors       text NOT NULL DEFAULT '[]',
        summary       text NOT NULL DEFAULT '',
        keywords      text NOT NULL DEFAULT '[]',
        pdf_url       text,
        code_url      text,
        code_stars    bigint,
        project_url   text,
        thumbnail_url text,
        comments      bigint,
        comment       text NOT NULL DEFAULT '',
        version       bigint,
        doi           text COLLATE "C"
    )""",
    "CREATE INDEX papers_first_seen ON papers (first_seen)",
    "CREATE INDEX papers_arrived_at ON papers (arrived_at)",
    "CREATE INDEX papers_folded_title ON papers (folded_title)",
    "CREATE INDEX papers_doi ON papers (doi)",
    """CREATE TABLE paper_sources (
        paper_id text COLLATE "C" NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
        source   text COLLATE "C" NOT NULL,
        PRIMARY KEY (paper_id, source)
    )""",
    """CREATE TABLE paper_terms (
        paper_id text COLLATE "C" PRIMARY KEY REFERENCES papers (id) ON DELETE CASCADE,
        key      text COLLATE "C" NOT NULL,
        data     bytea NOT NULL
    )""",
    """CREATE TABLE subscribers (
        id              bigint PRIMARY KEY,
        email           text COLLATE "C" NOT NULL UNIQUE,
        status          text NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
        timezone        text NOT NULL DEFAULT 'UTC',
        send_at         text NOT NULL DEFAULT '07:00',
        frequency       text NOT NULL DEFAULT 'daily' CHECK (frequency IN ('daily', 'weekly')),
        notify_empty    integer NOT NULL DEFAULT 0,
        created_at      timestamptz NOT NULL,
        confirmed_at    timestamptz,
        unsubscribed_at timestamptz,
        paused_at       timestamptz
    )""",
    """CREATE TABLE subscriber_profiles (
        subscriber_id bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
        name          text COLLATE "C" NOT NULL,
        keywords      text NOT NULL,
        exclude       text NOT NULL DEFAULT '[]',
        max_items     bigint,
        min_score     double precision,
        PRIMARY KEY (subscriber_id, name)
    )""",
    """CREATE TABLE deliveries (
        id              text COLLATE "C" NOT NULL,
        subscriber_id   bigint NOT NULL REFERENCES subscribers (id),
        digest_date     date NOT NULL,
        state           text NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'retry')),
        attempts        integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz,
        reason          text NOT NULL DEFAULT '',
        window_start    timestamptz,
        window_end      timestamptz NOT NULL,
        content         text NOT NULL,
        created_at      timestamptz NOT NULL,
        updated_at      timestamptz NOT NULL,
        sent_at         timestamptz,
        papers_upto     bigint,
        paper_ids       text NOT NULL DEFAULT '[]',
        PRIMARY KEY (id, digest_date),
        UNIQUE (subscriber_id, digest_date)
    ) PARTITION BY RANGE (digest_date)""",
    "CREATE INDEX deliveries_id ON deliveries (id)",
    "CREATE INDEX deliveries_state ON deliveries (state, next_attempt_at)",
    "CREATE INDEX deliveries_upto ON deliveries (papers_upto)",
    "CREATE INDEX deliveries_day ON deliveries (digest_date)",
    """CREATE TABLE frozen_items (
        key  text COLLATE "C" PRIMARY KEY,
        item text NOT NULL
    )""",
    """CREATE TABLE locks (
        name       text COLLATE "C" PRIMARY KEY,
        owner      text NOT NULL,
        expires_at timestamptz NOT NULL
    )""",
    """CREATE TABLE fetch_state (
        source     text COLLATE "C" PRIMARY KEY,
        url        text NOT NULL,
        state      text NOT NULL DEFAULT '{}',
        fetched_at timestamptz,
        status     text NOT NULL DEFAULT '',
        error      text NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE installation (
        key   text COLLATE "C" PRIMARY KEY,
        value text NOT NULL
    )""",
    """CREATE TABLE ratings (
        subscriber_id bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
        paper_id      text COLLATE "C" NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
        vote          integer NOT NULL CHECK (vote IN (-1, 1)),
        via           text NOT NULL DEFAULT 'email',
        rated_at      timestamptz NOT NULL,
        PRIMARY KEY (subscriber_id, paper_id)
    )""",
    "CREATE INDEX ratings_paper ON ratings (paper_id)",
)


def update_from_0_to_12(db: Connection) -> None:
    """Every table of SQLite's version 12, and the installation's random id."""
    for statement in _TABLES_V12:
        db.execute(statement)
    db.execute("INSERT INTO installation (key, value) VALUES ('id', ?)", (secrets.token_hex(16),))


def update_from_12_to_13(db: Connection) -> None:
    """`paper_vectors`, as SQLite's step 13 (`store.schema.update_from_12_to_13`): each
    paper's sentence vector for the optional semantic layer, by model."""
    db.execute(
        """CREATE TABLE paper_vectors (
            paper_id text COLLATE "C" PRIMARY KEY REFERENCES papers (id) ON DELETE CASCADE,
            model    text COLLATE "C" NOT NULL,
            data     bytea NOT NULL
        )"""
    )


def update_from_13_to_14(db: Connection) -> None:
    """The kept postings, as SQLite's step 14 (`store.schema.update_from_13_to_14`)."""
    db.execute(
        """CREATE TABLE term_blocks (
            block bigint PRIMARY KEY,
            key   text COLLATE "C" NOT NULL,
            bits  integer NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE term_counts (
            paper_id       text COLLATE "C" PRIMARY KEY REFERENCES papers (id) ON DELETE CASCADE,
            block          bigint NOT NULL REFERENCES term_blocks (block),
            slot           integer NOT NULL,
            text_hash      bytea NOT NULL,
            title_words    bigint NOT NULL,
            abstract_words bigint NOT NULL
        )"""
    )
    db.execute("CREATE INDEX term_counts_block ON term_counts (block, slot)")
    db.execute("CREATE TABLE term_postings (cell bigint PRIMARY KEY, data bytea NOT NULL)")
    db.execute("CREATE TABLE postings_state (last_block bigint NOT NULL, backfill_from bigint)")
    db.execute(
        "INSERT INTO postings_state (last_block, backfill_from)"
        " SELECT 0, CASE WHEN EXISTS (SELECT 1 FROM paper_terms) THEN 0 END"
    )


def update_from_14_to_15(db: Connection) -> None:
    """`subscribers.next_send_at`, indexed, filled for the readers there are: as
    SQLite's step 15 (`store.schema.update_from_14_to_15`). And `send_rate`, the
    workers' token bucket per sending account (`store.pg.work`), which `digest worker`
    made itself before (IF NOT EXISTS: a database it made keeps its buckets)."""
    db.execute("ALTER TABLE subscribers ADD COLUMN next_send_at timestamptz")
    db.execute(
        "CREATE INDEX subscribers_next_send ON subscribers (next_send_at, id)"
        " WHERE next_send_at IS NOT NULL"
    )
    fill_next_send(db)
    db.execute(
        """CREATE TABLE IF NOT EXISTS send_rate (
            account      text PRIMARY KEY,
            tokens       double precision NOT NULL,
            at           timestamptz NOT NULL,
            paused_until timestamptz
        )"""
    )


def update_from_15_to_16(db: Connection) -> None:
    """`day_index`, as SQLite's step 16 (`store.schema.update_from_15_to_16`): the day's
    paper index, made once for every ranking shard to load."""
    db.execute(
        """CREATE TABLE day_index (
            key     text COLLATE "C" PRIMARY KEY,
            low     bigint NOT NULL,
            high    bigint NOT NULL,
            made_at timestamptz NOT NULL,
            data    bytea NOT NULL
        )"""
    )


def update_from_16_to_17(db: Connection) -> None:
    """`related_terms` and `related_state`, as SQLite's step 17
    (`store.schema.update_from_16_to_17`): the related terms learned from the papers."""
    db.execute(
        'CREATE TABLE related_terms (key text COLLATE "C" NOT NULL,'
        ' feature text COLLATE "C" NOT NULL, related text COLLATE "C" NOT NULL,'
        " weight double precision NOT NULL, PRIMARY KEY (key, feature, related))"
    )
    db.execute(
        'CREATE TABLE related_state (key text COLLATE "C" PRIMARY KEY,'
        " papers bigint NOT NULL, made_at timestamptz NOT NULL)"
    )


def update_from_17_to_18(db: Connection) -> None:
    """`keyword_vectors`, as SQLite's step 18 (`store.schema.update_from_17_to_18`): each
    keyword text's sentence vector for the semantic layer, by model."""
    db.execute(
        'CREATE TABLE keyword_vectors (model text COLLATE "C" NOT NULL,'
        ' text text COLLATE "C" NOT NULL, data bytea NOT NULL, PRIMARY KEY (model, text))'
    )


def update_from_18_to_19(db: Connection) -> None:
    """`paper_search` and `postings_state.search_from`, as SQLite's step 19
    (`store.schema.update_from_18_to_19`): each kept blob's searchable hashes."""
    db.execute(
        'CREATE TABLE paper_search (paper_id text COLLATE "C" PRIMARY KEY'
        " REFERENCES paper_terms (paper_id) ON DELETE CASCADE,"
        ' key text COLLATE "C" NOT NULL, data bytea NOT NULL)'
    )
    db.execute("ALTER TABLE postings_state ADD COLUMN search_from bigint")
    db.execute(
        "UPDATE postings_state SET search_from = CASE WHEN backfill_from IS NULL"
        " AND EXISTS (SELECT 1 FROM paper_terms) THEN 0 END"
    )


#: Each step by the version it starts from, and the version it reaches.
PG_MIGRATIONS: dict[int, tuple[int, Callable[[Connection], None]]] = {
    0: (12, update_from_0_to_12),
    12: (13, update_from_12_to_13),
    13: (14, update_from_13_to_14),
    14: (15, update_from_14_to_15),
    15: (16, update_from_15_to_16),
    16: (17, update_from_16_to_17),
    17: (18, update_from_17_to_18),
    18: (19, update_from_18_to_19),
}
#: The table that holds the version (SQLite's `PRAGMA user_version`).
VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"
