"""The ingest stage: sources -> store. Files and URLs are read, parsed, merged in.

One transaction per file or URL: an input that fails to read or parse adds nothing and
the others go on. Errors are collected, never raised, so one bad source never costs the
good ones. `pipeline.ingest` is how the rest of the program calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as with_
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from digest.config import Config, SourceConfig
from digest.errors import DigestError
from digest.model import Paper, SourceWarning
from digest.sources import parser_for
from digest.sources.days import day_in_origin, midnight
from digest.sources.files import expand, modified_date, read_capture
from digest.store import IngestCounts, Store

if TYPE_CHECKING:
    import httpx

#: What a parser may raise on input nobody foresaw; reported per input, never fatal.
_PARSER_BUGS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    ArithmeticError,
    RecursionError,
)

#: progress(done, total, label): called after each unit of work.
ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What an ingest did: counts, per-entry warnings, per-file errors."""

    files: int = 0
    entries: int = 0
    counts: IngestCounts = field(default_factory=IngestCounts)
    malformed: int = 0
    warnings: tuple[SourceWarning, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def skipped(self) -> int:
        """Entries that changed nothing: already known as they are, or malformed."""
        return self.counts.unchanged + self.malformed

    def summary(self) -> str:
        return f"{self.counts.new} new, {self.counts.updated} updated, {self.skipped} skipped"


@dataclass(frozen=True, slots=True)
class _Job:
    path: Path
    source: SourceConfig


def ingest(
    config: Config,
    store: Store,
    paths: Sequence[str] = (),
    *,
    now: datetime,
    kind: str | None = None,
    progress: ProgressFn | None = None,
    client: httpx.Client | None = None,
) -> IngestReport:
    """Read the configured sources (or `paths`), parse them and merge them into the store.

    A file in `paths` is read as the kind of the configured source whose glob names it,
    else by its content (kind `auto`); `kind` forces one for all of `paths`. A file's
    papers are first seen on the day it names (`sources.days`), else the day its content
    names, else its source's `captured` day or the file's modification day.

    New papers arrive at `now`: what a digest calls new is what arrived after the
    reader's last one, whatever date the source printed. One transaction per file or
    URL: an input that fails to read or parse adds nothing and the others go on. Errors
    are collected, never raised, so one bad source never costs the good ones. URL
    sources are fetched politely (`sources.fetch`; `client` is the httpx client to use,
    for tests) and stamped with the fetch time `now`.
    """
    jobs, errors = _plan(config, paths, kind)
    url_report = _ingest_urls(config, store, now, client) if not paths else None
    warnings: list[SourceWarning] = []
    counts, entries, malformed = IngestCounts(), 0, 0
    max_bytes = int(config.max_file_mb * 1_000_000)
    for done, job in enumerate(jobs, 1):
        parser = parser_for(job.source.kind)
        if parser is None:  # config validation makes this unreachable for configured sources
            errors.append(f"{job.path}: no parser for kind {job.source.kind!r}")
            continue
        file_warnings: list[SourceWarning] = []
        try:
            data = read_capture(job.path, max_bytes)
            captured = (
                job.source.captured or day_in_origin(str(job.path)) or modified_date(job.path)
            )
            papers = list(
                parser(
                    data,
                    origin=str(job.path),
                    source=job.source.name,
                    captured=captured,
                    warn=file_warnings.append,
                )
            )
            added = store.add_papers(papers, arrived_at=now)
            file_warnings += _title_merges(str(job.path), added)
            counts += added
            entries += len(papers)
        except DigestError as exc:  # this input's fault or not, the others go on
            errors.append(str(exc))
        except _PARSER_BUGS as exc:  # a parser that chokes on hostile input: report, go on
            errors.append(f"{job.path}: cannot be parsed ({type(exc).__name__}: {exc})")
        warnings.extend(file_warnings)
        malformed += sum(1 for w in file_warnings if w.skipped)
        if progress:
            progress(done, len(jobs), job.path.name)
    if url_report is not None:
        counts += url_report.counts
        entries += url_report.entries
        malformed += url_report.malformed
        warnings.extend(url_report.warnings)
        errors.extend(url_report.errors)
    if counts.new or counts.updated:  # ranking will read them from now on: analyse them once
        analyse_recent(config, store, now)
        embed_recent(config, store, now)
    return IngestReport(
        files=len(jobs) + (url_report.files if url_report else 0),
        entries=entries,
        counts=counts,
        malformed=malformed,
        warnings=tuple(warnings),
        errors=tuple(errors),
    )


#: How far back ingest makes sure every paper's analysed text is kept: the longest window
#: a digest ranks (a week for weekly readers) and a day to spare. Older papers, after the
#: analysis changed, are analysed when something ranks them.
ANALYSE_BACK = timedelta(days=8)


def analyse_recent(config: Config, store: Store, now: datetime) -> int:
    """Analyse the papers that arrived in the last `ANALYSE_BACK` and have no terms kept
    under today's analysis (new ones, enriched ones), and keep them (and their postings);
    how many."""
    from digest import rank  # numpy and the stemmer: only when there is something to do

    key = rank.terms_key(config.synonyms or None)
    lacking = store.papers_lacking_terms(key, store.row_arrived_by(now - ANALYSE_BACK))
    kept = store.keep_paper_terms(rank.encode_terms(lacking, config.synonyms or None), key)
    # After an upgrade to kept postings, the first ingest makes those of the papers
    # analysed before (`Store.backfill_postings`, a batch a transaction); then none.
    while store.backfill_postings():
        pass
    return kept


@dataclass(frozen=True, slots=True)
class EmbedReport:
    """What `embed_missing` did: papers embedded, and how many had a vector already."""

    embedded: int
    kept: int  #: papers that already had a vector of this model (left as they were)
    model: str
    cpu_seconds: float

    def summary(self) -> str:
        """One line for the CLI."""
        rate = f", {self.cpu_seconds / self.embedded:.3f} CPU-s a paper" if self.embedded else ""
        return (
            f"{self.embedded} papers embedded, {self.kept} had a vector already"
            f" ({self.model}; {self.cpu_seconds:.1f} CPU-s{rate})"
        )


#: Papers embedded and committed together: an interrupted backfill keeps what it did.
EMBED_CHUNK = 256


def embed_missing(
    store: Store,
    after_row: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
) -> EmbedReport:
    """Embed every paper after `after_row` that has no vector of the installed model and
    keep the vectors (the semantic layer: `rank.dense`), `EMBED_CHUNK` a transaction.
    Raises `SemanticUnavailable` when the `semantic` extra is not installed."""
    import time

    from digest.rank import dense, encoder

    model = encoder.load_encoder()
    lacking = store.papers_lacking_vectors(model.model, after_row)
    kept = store.count_paper_vectors(model.model)
    start = time.process_time()
    for lo in range(0, len(lacking), EMBED_CHUNK):
        part = lacking[lo : lo + EMBED_CHUNK]
        vectors = model.encode([dense.paper_text(p) for p in part], workers=available_cores())
        store.keep_paper_vectors(
            ((p.id, dense.encode_vector(v)) for p, v in zip(part, vectors, strict=True)),
            model.model,
        )
        if progress:
            progress(lo + len(part), len(lacking), "embed")
    return EmbedReport(len(lacking), kept, model.model, time.process_time() - start)


def available_cores() -> int:
    """The cores this process may run on: the embedding's threads (`Encoder.encode`)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def embed_recent(config: Config, store: Store, now: datetime) -> int:
    """With the semantic layer on (`window.kept_vectors` says when), embed the papers that
    arrived in the last `ANALYSE_BACK` and have no vector yet; how many (0 when off)."""
    if config.ranking.dense_credit <= 0:
        return 0
    from digest.rank import encoder

    if not encoder.semantic_available():
        return 0
    return embed_missing(store, store.row_arrived_by(now - ANALYSE_BACK)).embedded


def _ingest_urls(
    config: Config, store: Store, now: datetime, client: httpx.Client | None
) -> IngestReport:
    """Fetch every `url` source; a failing one is reported and the others go on."""
    # httpx costs a fifth of a second to import: only when there is something to fetch.
    from digest.sources.fetch import FetchState, HostGate
    from digest.sources.fetch import fetch as fetch_url

    sources = [s for s in config.sources if s.url]
    if not sources:
        return IngestReport()
    gate = HostGate()
    counts, entries, malformed = IngestCounts(), 0, 0
    warnings: list[SourceWarning] = []
    errors: list[str] = []
    for source in sources:
        url = (source.url or "").replace("{date}", now.date().isoformat())
        kept = store.fetch_state(source.name)
        state = FetchState.from_json(kept.state if kept and kept.url == url else None)
        parser = parser_for(source.kind)
        assert parser is not None  # config validation checked the kind
        try:
            accept = "application/json" if source.kind == "hf_daily" else None
            result = fetch_url(url, state=state, client=client, gate=gate, accept=accept)
            if result.status == "not_modified":
                store.save_fetch_state(source.name, url, state.to_json(), now, "not modified")
                continue
            found: list[SourceWarning] = []
            papers = [
                _stamped(p, url, now)
                for p in parser(
                    result.data,
                    origin=url,
                    source=source.name,
                    captured=now.date(),
                    warn=found.append,
                )
            ]
            added = store.add_papers(papers, arrived_at=now)
            found += _title_merges(url, added)
            counts += added
            entries += len(papers)
            warnings += found
            malformed += sum(1 for w in found if w.skipped)
            store.save_fetch_state(source.name, url, result.state.to_json(), now, "ok")
        except (DigestError, *_PARSER_BUGS) as exc:  # this source's fault: the others go on
            why = (
                str(exc)
                if isinstance(exc, DigestError)
                else (f"{url}: cannot be parsed ({type(exc).__name__}: {exc})")
            )
            errors.append(f"source {source.name!r}: {why}")
            store.save_fetch_state(source.name, url, state.to_json(), now, "error", why)
    return IngestReport(
        files=len(sources),
        entries=entries,
        counts=counts,
        malformed=malformed,
        warnings=tuple(warnings),
        errors=tuple(errors),
    )


def _stamped(paper: Paper, url: str, now: datetime) -> Paper:
    """A fetched paper is first seen at the fetch time, or on the day its URL names when
    that day is past (`?date=2024-05-27`: an archive fetched late keeps its days)."""
    day = day_in_origin(url)
    first = midnight(day) if day is not None and day < now.date() else now
    return with_(paper, first_seen=first, last_seen=now)


def _title_merges(origin: str, counts: IngestCounts) -> list[SourceWarning]:
    """A warning for each record the store merged into a paper by its title alone."""
    return [
        SourceWarning(
            origin,
            0,
            f"{title[:60]!r} merged into stored paper {paper_id} by its title alone"
            " (no arXiv id, DOI, first author or link to tell them apart)",
        )
        for title, paper_id in counts.title_merges
    ]


def _plan(
    config: Config, paths: Sequence[str], kind: str | None = None
) -> tuple[list[_Job], list[str]]:
    """Which files to read, with the source each belongs to; missing ones become errors."""
    errors: list[str] = []
    jobs: list[_Job] = []
    configured: dict[Path, SourceConfig] = {}
    for source in config.sources:
        if source.path:
            found = expand(source.path, config.root)
            if not found:
                errors.append(
                    f"{config.path}: source {source.name!r}: path {source.path!r} matches no file"
                )
            for file in found:
                configured.setdefault(file.resolve(), source)
    if not paths:
        return [_Job(p, s) for p, s in configured.items()], errors
    errors.clear()  # explicit paths: the configured globs are not read, so not checked
    manual = SourceConfig(name="files", kind=kind or "auto")
    for pattern in paths:
        found = expand(pattern, Path.cwd())
        if not found or (len(found) == 1 and not found[0].exists()):
            errors.append(f"{pattern}: no such file or directory")
            continue
        for file in found:
            source = configured.get(file.resolve(), manual)
            jobs.append(_Job(file, with_(source, kind=kind) if kind else source))
    return jobs, errors
