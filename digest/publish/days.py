"""The pages that belong to days, built a month at a time.

A year at 2,000 papers a day is 730,000 papers: held at once they would take gigabytes.
So the days a publish reads are built in chunks (`DaysJob`, a calendar month each, or
what of it is read): read the chunk's papers, rank the days whose key is new (the
others take their saved picks), plan each day's page, permalinks and search shard,
render and write the files whose inputs changed, and keep of the day only its `DayState`
(picks and display copies of the picked papers), which is what the site-wide pages are
made from. Then the papers go.

A chunk is a plain job (`build_days`): in this process, or in worker processes that
open the store themselves (`SourceOpener`), so no paper is pickled across; each
returns the states, what it wrote, and the inputs hash of every file it planned.
"""

from __future__ import annotations

import functools
import gc
import importlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import jinja2

from digest.config import Config
from digest.model import Paper
from digest.publish.manifest import (
    DamagedState,
    DayState,
    day_path,
    paper_key,
    same_content,
    write_atomic,
)
from digest.publish.names import day_of, plain, shorten
from digest.publish.picks import Pick, RankFn, day_key, pick_from_json, pick_to_json, rank_days
from digest.publish.search import TermsFn, day_search_pages
from digest.publish.site import TEMPLATES, Page, day_pages
from digest.publish.source import PaperSource
from digest.publish.views import Archive, ProfileInfo, display_copy
from digest.rank.texthash import sharing_text_hashes
from digest.render import make_environment

#: Opens the store again in a worker process (`functools.partial(Store, path)`).
SourceOpener = Callable[[], AbstractContextManager[PaperSource]]
#: Below this many days to rank, worker processes cost more than they save.
PARALLEL_MIN_DAYS = 16


@dataclass(frozen=True, slots=True)
class SiteContext:
    """What every chunk of a publish shares (picklable)."""

    config: Config
    out: Path
    globals_key: str
    basis: str
    profiles: tuple[ProfileInfo, ...]
    ranker: RankFn
    terms: TermsFn | None = None  #: the papers' kept terms, for the search index


@dataclass(frozen=True, slots=True)
class DaysJob:
    """Some consecutive published days to build, oldest first."""

    days: tuple[date, ...]
    previous: date | None  #: the published day before the first (its pages link it)
    saved: dict[date, DayState]  #: the last publish's state of these days, where kept


@dataclass(frozen=True, slots=True)
class DaysResult:
    """What a chunk made."""

    states: dict[date, DayState]
    written: list[str]  #: files rendered and written, in planned order
    planned: list[str]  #: every file of these days, in planned order
    ranked: int  #: days ranked (the others took their saved picks)


@functools.lru_cache(maxsize=4)
def site_environment(templates_dir: Path | None) -> jinja2.Environment:
    """The site's Jinja environment, one a process: each chunk would compile the
    templates again (Jinja still reloads a template whose file changed)."""
    env = make_environment(templates_dir)
    env.filters.update(plain=plain, shorten=shorten)
    return env


def month_chunks(days: Sequence[date]) -> list[list[date]]:
    """`days` (oldest first) cut at month boundaries."""
    chunks: dict[tuple[int, int], list[date]] = {}
    for day in days:
        chunks.setdefault((day.year, day.month), []).append(day)
    return list(chunks.values())


def _cached_picks(day: date, state: DayState | None, key: str) -> list[Pick] | None:
    if state is None or state.key != key:
        return None
    try:
        return [pick_from_json(day, raw) for raw in state.details()[0]]
    except (KeyError, TypeError, ValueError, DamagedState):
        return None  # a damaged cache entry: rank the day again


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """No cyclic garbage collection for a while. A chunk makes some million objects that
    live until it ends (a month of papers, their terms, listings and rows), none of them
    in a cycle: each collection of the oldest generation walks all of them again, a
    sixth of a chunk's CPU; freeing by reference count is unaffected."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_days(job: DaysJob, site: SiteContext, source: PaperSource) -> DaysResult:
    """Read, rank, plan and write the days of `job` (see the module docstring). Each
    paper's text is hashed once for the chunk (`rank.texthash`): its fingerprint, the
    check of its kept postings and of its search hashes all take the same hash."""
    with _no_cycle_collection(), sharing_text_hashes():
        return _build_days(job, site, source)


def _build_days(job: DaysJob, site: SiteContext, source: PaperSource) -> DaysResult:
    config = site.config
    first, last = job.days[0], job.days[-1]
    wanted = set(job.days)
    by_day: dict[date, list[Paper]] = {d: [] for d in reversed(job.days)}
    for paper in source.papers_between(first, last + timedelta(days=1)):
        if paper.first_seen is not None and (day := day_of(paper.first_seen)) in wanted:
            by_day[day].append(paper)
    by_day = {d: ps for d, ps in by_day.items() if ps}
    fingerprints = {p.id: paper_key(p) for ps in by_day.values() for p in ps}
    keys = {d: day_key(site.basis, d, [fingerprints[p.id] for p in ps]) for d, ps in by_day.items()}
    picks: dict[date, list[Pick]] = {}
    stale = []
    for d in by_day:
        got = _cached_picks(d, job.saved.get(d), keys[d])
        if got is None:
            stale.append((d, by_day[d]))
        else:
            picks[d] = got
    if stale:
        profiles = list(config.profiles)
        synonyms = config.synonyms or None
        picks.update(rank_days(stale, profiles, config.ranking, synonyms, site.ranker))
    previous = [job.previous] if job.previous else []
    archive = Archive(
        title=config.digest_title,
        base_url=config.publish.base_url,
        profiles=list(site.profiles),
        days=[*by_day, *previous],
        counts={d: len(ps) for d, ps in by_day.items()},
        day_keys=keys,
        picks=picks,
        papers={p.id: p for ps in by_day.values() for p in ps},
        day_papers=by_day,
        fingerprints=fingerprints,
        recent_days=config.publish.recent_days,
        feed_entries=config.publish.feed_entries,
    )
    archive.index_picks()
    env = site_environment(config.templates_dir)
    states: dict[date, DayState] = {}
    written: list[str] = []
    planned: list[str] = []
    for d in reversed(list(by_day)):  # oldest first, as the chunks go
        pages = [
            *day_pages(archive, env, site.globals_key, d),
            *day_search_pages(archive, d, config.synonyms or None, site.terms),
        ]
        old = job.saved[d].pages if d in job.saved else {}
        for page in pages:
            planned.append(page.path)
            if _write(site.out, page, old.get(page.path)):
                written.append(page.path)
        states[d] = _day_state(archive, d, pages)
        text = states[d].dumps().encode("utf-8")
        if not same_content(day_path(site.out, d), text):
            write_atomic(day_path(site.out, d), text)
    return DaysResult(states, written, planned, len(stale))


def _write(out: Path, page: Page, old_key: str | None) -> bool:
    """Render and write `page` unless its inputs are unchanged; True when written."""
    target = out / page.path
    if old_key == page.key and target.exists():
        return False
    data = page.render()
    if same_content(target, data):
        return False
    write_atomic(target, data)
    return True


def _day_state(archive: Archive, day: date, pages: list[Page]) -> DayState:
    """What the next publish needs of a day it does not read again."""
    picks = archive.picks.get(day, [])
    per_profile = [0] * len(archive.profiles)
    for pick in picks:
        per_profile[pick.profile] += 1
    return DayState(
        key=archive.day_keys[day],
        count=archive.counts[day],
        picks=[pick_to_json(p) for p in picks],
        papers={p.paper_id: display_copy(archive.papers[p.paper_id]) for p in picks},
        pages={p.path: p.key for p in pages},
        per_profile=tuple(per_profile),
    )


def _warm(site: SiteContext, rank_days_hint: int) -> None:
    """What each forked worker would do for itself first, done once before they are
    forked (they inherit it): the site's templates compiled and, when days are to be
    ranked, the ranker's modules (numpy, scipy, the stemmer) imported."""
    env = site_environment(site.config.templates_dir)
    for name in TEMPLATES:
        env.get_template(name)
    if rank_days_hint:
        importlib.import_module("digest.rank.ranker")


def _run_chunk(args: tuple[DaysJob, SiteContext, SourceOpener]) -> DaysResult:
    """Worker entry point: open the store, build one chunk."""
    job, site, opener = args
    with opener() as source:
        return build_days(job, site, source)


def run_chunks(
    jobs: Sequence[DaysJob],
    site: SiteContext,
    source: PaperSource,
    opener: SourceOpener | None,
    workers: int | None,
    rank_days_hint: int,
) -> list[DaysResult]:
    """Every job's result, in order: in worker processes when `opener` lets them read the
    store and there are enough days to rank (`workers` None: one per CPU then)."""
    if workers is None:
        workers = (os.cpu_count() or 1) if rank_days_hint >= PARALLEL_MIN_DAYS else 1
    workers = max(1, min(workers, len(jobs)))
    if workers == 1 or opener is None:
        return [build_days(job, site, source) for job in jobs]
    # fork is cheapest, but forking a process that runs other threads (a progress bar's
    # refresh thread, say) can deadlock the child: then spawn, which re-imports instead.
    single = threading.active_count() == 1
    method = "fork" if single and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    if method == "fork":
        _warm(site, rank_days_hint)
    try:
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context(method)
        ) as pool:
            return list(pool.map(_run_chunk, [(job, site, opener) for job in jobs]))
    except (BrokenProcessPool, OSError, RuntimeError):
        # No usable worker processes (a sandbox without fork, a script that spawns
        # without a `__main__` guard ...): the same work, in this process.
        return [build_days(job, site, source) for job in jobs]
