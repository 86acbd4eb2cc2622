"""Which stored papers a ranking reads, with the analysed text ingest kept for them.

`rank`, `preview`, `run`'s digest and `serve`'s preview rank a window of what ARRIVED in
the store (plan.py's one notion of "new"): by default what a reader's first digest would
hold, so their cost is the window's, not the store's. `KeptTermsRanker` is `rank.rank`
reading the kept terms, for the archive (its workers open the store themselves).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import Config
from digest.model import DigestItem, Paper, Profile
from digest.rank import RankSettings
from digest.store import Store, open_store

if TYPE_CHECKING:
    import numpy as np

    from digest import rank
    from digest.rank.dense import DenseDay


@dataclass(frozen=True, slots=True)
class Window:
    """Which stored papers `rank_stored` and `preview` rank: those that ARRIVED in the store
    after `after` (the row's arrival, not the source's date: plan.py's one notion of
    "new"), or every stored paper when `after` is None."""

    after: datetime | None = None
    #: How a message names the window: "in the last day", "on or after 2025-10-16".
    label: str = "in the store"


def recent_window(now: datetime, frequency: str = "daily") -> Window:
    """What a reader's first digest at `now` would hold: the papers that arrived in the
    one period (a day, a week for weekly readers) before `now`, as `plan.due_readers`."""
    from digest.plan import PERIODS

    return Window(
        now - PERIODS[frequency], "in the last week" if frequency == "weekly" else "in the last day"
    )


def window_since(day: date) -> Window:
    """The papers that arrived on or after `day` (from 00:00 UTC)."""
    start = datetime.combine(day, time.min, UTC)
    # Stored times have microseconds: "after one tick before midnight" is "from midnight".
    return Window(start - timedelta(microseconds=1), f"on or after {day.isoformat()}")


def stored_papers(store: Store, window: Window | None = None) -> list[Paper]:
    """The stored papers in `window` (every one when None). A window reads only its own
    rows, in arrival order, as the send does: its cost is the window's, not the store's."""
    if window is None or window.after is None:
        return store.papers()
    low = store.row_arrived_by(window.after)
    return [paper for _, paper in store.arrivals(low, store.newest_paper_row())]


def kept_terms(config: Config, store: Store, papers: Sequence[Paper]) -> dict[str, bytes]:
    """The analysed text ingest kept for `papers` (`Store.paper_terms`, under this config's
    analysis), for `build_digest`: ranking reads it instead of analysing every paper."""
    from digest import rank

    return store.paper_terms([p.id for p in papers], rank.terms_key(config.synonyms or None))


def kept_vectors(
    config: Config, store: Store, papers: Sequence[Paper], keep_keywords: bool = True
) -> DenseDay | None:
    """The semantic layer's side of ranking `papers` (their stored vectors, and the
    encoder for keywords), or None when the layer is off: the extra is not installed,
    DIGEST_SEMANTIC=off, `[ranking] dense_credit` is 0, or no paper has a vector.
    `keep_keywords`: the keywords' vectors are kept in the store for later processes
    (`KeptKeywordVectors`); False for what anonymous visitors type (the web's previews),
    which is embedded for this ranking only."""
    if not papers or config.ranking.dense_credit <= 0:
        return None
    from digest.rank import encoder

    if not encoder.semantic_available():
        return None
    blobs = store.paper_vectors([p.id for p in papers], encoder.model_id())
    if not blobs:
        return None
    from digest.rank import dense

    model = encoder.load_encoder()
    vectors, present = dense.decode_vectors(papers, blobs)
    keywords = KeptKeywordVectors(store, model.encode, model.model, keep=keep_keywords)
    return dense.DenseDay(vectors, present, keywords, model.model)


@dataclass(frozen=True, slots=True)
class KeptKeywordVectors:
    """The semantic layer's keyword embedder (`dense.EmbedFn`) through the store: the
    vectors kept for these texts are read, and only the texts no process embedded before
    are embedded, then kept (`keyword_vectors`). A keyword then costs its ~7 ms of
    embedding once, not in every process that ranks it. A store that cannot be written
    (a read-only file) still ranks: the vectors are then this process's alone."""

    store: Store
    encode: Callable[[Sequence[str]], np.ndarray]
    model: str
    keep: bool = True  #: False: read the kept ones, but keep none of these texts

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text (len(texts) x DIM float32), as `dense.EmbedFn`."""
        import numpy as np

        from digest.errors import StoreError
        from digest.rank import dense

        found: dict[str, np.ndarray] = {}
        for text, blob in self.store.keyword_vectors(list(texts), self.model).items():
            vector = dense.decode_keyword(blob)
            if vector is not None:
                found[text] = vector
        missing = sorted({t for t in texts if t not in found})
        if missing:
            made = self.encode(missing)
            found.update(zip(missing, made, strict=True))
            if self.keep and not self.store.read_only:
                try:
                    kept = [dense.encode_keyword(v) for v in made]
                    self.store.keep_keyword_vectors(zip(missing, kept, strict=True), self.model)
                except StoreError:
                    pass  # kept next time a process can write; ranked the same either way
        if not texts:
            return np.zeros((0, dense.DIM), np.float32)
        return np.stack([np.asarray(found[t], np.float32) for t in texts])


def reader_ratings(
    store: Store,
    subscriber_ids: Sequence[int],
    synonyms: Mapping[str, Sequence[str]] | None,
    vector_model: str | None = None,
) -> dict[int, list[rank.Rated]]:
    """What the ranker learns from for these readers (one query for all of them): each
    one's rated papers, with the terms ingest kept for them and, given the semantic
    layer's `vector_model` (`DenseDay.model`, `ratings_model`), their stored vectors."""
    from digest import rank

    found = store.rated_papers(subscriber_ids, rank.terms_key(synonyms or None))
    vectors: Mapping[str, bytes] = {}
    if vector_model is not None:
        ids = sorted({paper.id for rows in found.values() for paper, _, _ in rows})
        vectors = store.paper_vectors(ids, vector_model) if ids else {}
    return {
        sid: [rank.Rated(paper, vote, blob, vectors.get(paper.id)) for paper, vote, blob in rows]
        for sid, rows in found.items()
    }


def ratings_model(config: Config) -> str | None:
    """The model whose stored vectors a reader's ratings are read with (`reader_ratings`):
    the semantic layer's when it is on for this config, else None (words alone)."""
    if config.ranking.dense_credit <= 0 or config.ranking.like_dense <= 0:
        return None
    from digest.rank import encoder

    return encoder.model_id() if encoder.semantic_available() else None


@dataclass(frozen=True, slots=True)
class KeptTermsRanker:
    """`rank.rank` on the terms ingest kept (in `store_path`), indexing only the profiles'
    features, read from the kept postings (`rank.postings`): a day of the archive costs
    the postings of those features, not the reading of every paper's terms. Picklable, so the
    archive's worker processes can take it; each call opens the store to read."""

    store_path: Path | str  #: a SQLite file or a PostgreSQL URL (`store.open_store`)

    def __call__(
        self,
        papers: Sequence[Paper],
        profiles: Sequence[Profile],
        now: datetime,
        settings: RankSettings,
        synonyms: Mapping[str, Sequence[str]] | None = None,
    ) -> list[tuple[DigestItem, ...]]:
        from digest import rank

        keywords = [k for p in profiles for k in (*p.keywords, *p.exclude)]
        wanted = rank.keyword_features(keywords, settings, synonyms or None)
        with open_store(self.store_path) as store:
            prepared = kept_index(store, papers, now, settings, synonyms or None, wanted)
            return [r.items for r in rank.rank_prepared(prepared, profiles)]


def kept_index(
    store: Store,
    papers: Sequence[Paper],
    now: datetime,
    settings: RankSettings,
    synonyms: Mapping[str, Sequence[str]] | None,
    wanted: set[str],
    dense: DenseDay | None = None,
) -> rank.Prepared:
    """The index of `papers` for the `wanted` features from what ingest kept: their
    postings (`rank.postings`: what the papers hold of those features, not every
    paper's 6 KB blob), and the blobs of papers without postings (all of them only when
    a rated reader needs the day's vectors: `StoredBlobs`). The same index either way:
    postings only stand for a blob of the same text. The archive's ranker and a send's
    plan (`send.stored_index`) index this way. With bridges on (`[ranking]
    related_credit`), the kept related terms of `wanted` join it (`digest.bridges`)."""
    from digest import rank
    from digest.bridges import kept_related
    from digest.rank.postings import wanted_terms

    key = rank.terms_key(synonyms)
    related = kept_related(store, settings, wanted, synonyms)
    if related is not None:
        wanted = wanted | related.expand(wanted)
    kept = wanted_terms(
        papers, store.term_counts([p.id for p in papers], key), store.posting_rows, wanted
    )
    lacking = [p.id for p, got in zip(papers, kept, strict=True) if got is None]
    blobs = StoredBlobs(store, key, [p.id for p in papers], lacking)
    return rank.prepare(
        papers, now, settings, synonyms, blobs, wanted, dense, kept=kept, related=related
    )


@dataclass(frozen=True, slots=True)
class KeptTerms:
    """The terms ingest kept for some papers (in `store_path`, under the analysis of
    `synonyms`): what the archive's search index is made of, {id: their search row
    (`rank.searchrows`) where one is kept, else their blob}. Picklable, like
    `KeptTermsRanker`; each call opens the store to read."""

    store_path: Path | str  #: a SQLite file or a PostgreSQL URL (`store.open_store`)

    def __call__(
        self, papers: Sequence[Paper], synonyms: Mapping[str, Sequence[str]] | None = None
    ) -> Mapping[str, bytes]:
        from digest import rank

        ids, key = [p.id for p in papers], rank.terms_key(synonyms or None)
        with open_store(self.store_path) as store:
            # Their search rows (`rank.searchrows`) where kept: a tenth of a blob's bytes.
            found = store.paper_search(ids, key)
            lacking = [i for i in ids if i not in found]
            return {**found, **store.paper_terms(lacking, key)} if lacking else found


class StoredBlobs(Mapping[str, bytes]):
    """The kept blobs of `ids`: `first` at once, the others read from the store in one go
    when one of them is first asked for. A ranking on postings (the store's, or the day
    index the workers share) needs the blobs of the papers without postings only, unless
    a reader's ratings make the day's vectors (`rank.learn`), which read every paper's."""

    def __init__(self, store: Store, key: str, ids: Sequence[str], first: Sequence[str]):
        self._store, self._key, self._ids = store, key, ids
        self._found = store.paper_terms(first, key) if first else {}
        self._asked = set(first)

    def _all(self) -> dict[str, bytes]:
        if len(self._asked) < len(self._ids):
            rest = [i for i in self._ids if i not in self._asked]
            self._found.update(self._store.paper_terms(rest, self._key))
            self._asked.update(rest)
        return self._found

    def __getitem__(self, pid: str) -> bytes:
        if pid in self._found or pid in self._asked:
            return self._found[pid]
        return self._all()[pid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._ids)  # how many it may hold: asking that reads nothing
