"""The static web archive: day pages, profile pages, paper permalinks, Atom, search.

    publish(config, papers, now, ranker=rank.rank) -> PublishReport

The pipeline hands in the store (anything with `papers(since)`, `newest_paper_row()` and
`arrivals(low, high)`: a `source.PaperSource`) or a plain sequence of papers, and the
ranker (`pipeline.publish` does it for the CLI and the scheduler); this package writes
files and knows nothing of SQL or of the order of the day's stages.

A day is a UTC `first_seen` date of the stored papers (days after `now` are left out:
they are not published yet). Every configured profile ranks each day's papers as the
digest of that day would have (`now` = the end of the day). The output is a directory
of static files with relative links only, so it works from file:// and under any path:

    index.html                  recent days, top picks, every day and profile, search box
    days/YYYY-MM-DD.html        one day's digest: a section per profile, then every other
                                paper of the day (title linking to its permalink or its
                                source, meta, links; an anchor `#p-<id>` for search)
    profiles/<slug>.html        one profile's picks of the recent days, and its months
    profiles/<slug>/YYYY-MM.html  its picks of one month
    papers/<paper-id>.html      a permalink for each paper a profile picked, and for each
                                paper with no page elsewhere (no source URL or arXiv id)
    feeds/<slug>.atom           Atom per profile; feeds/all.atom for every profile's picks
    sitemap.xml                 only when [publish] base_url is set (absolute URLs needed)
    search-index.js, search/    the search index: every paper's features (as hashes) a
                                month at a time, and each day's rows: title, link and
                                the first 120 characters of each abstract (`search`)
    .publish-manifest.json, .publish-days/   the build state (`manifest`)

Why not a permalink per paper: a year at 2,000 papers a day would be 730,000 files, most
of them a copy of an abstract one click from its source. Day pages list every paper of
the day, so every paper is still found from its day page and from search.

Publishing is incremental and costs what changed: only the days that may have changed
are read from the store (`source`: days with new rows, the last few days, days after the
last publish), ranked when their papers changed, and planned, a month at a time, in
worker processes when many days need ranking (`days`); the other days' pages and
search shards are neither planned nor rendered, their picks come from the saved state.
Site-wide pages (index, profile pages, feeds, sitemap, the search day list) are planned
every time from the saved states of all days (keys, counts, and the picks and display
copies of the picked papers of the days a page being made shows: `SavedPicks`), so no
more than a month of papers is ever held at once. A file whose inputs
are unchanged is not rendered, and a file whose rendering is byte-identical is not
rewritten, so mtimes say what really changed. Files the previous publish wrote that
are no longer part of the site are removed. `full=True` reads and plans every day (a
change to an old paper then shows).
"""

from __future__ import annotations

import fcntl
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath

from digest.config import Config
from digest.errors import PublishError
from digest.model import Paper
from digest.publish.days import (
    DaysJob,
    SiteContext,
    SourceOpener,
    month_chunks,
    run_chunks,
    site_environment,
)
from digest.publish.feeds import feed_pages, sitemap_pages, static_pages
from digest.publish.manifest import (
    DAYS_DIR,
    MANIFEST_NAME,
    DamagedState,
    DayState,
    Manifest,
    day_path,
    inputs_hash,
    same_content,
    write_atomic,
)
from digest.publish.names import day_of, unique_slugs
from digest.publish.picks import Pick, RankFn, pick_from_json, ranking_basis
from digest.publish.profiles import profile_pages
from digest.publish.search import SEARCH_FORMAT, TermsFn, search_pages
from digest.publish.site import SITE_VERSION, TEMPLATES, Page, index_page, template_hash
from digest.publish.source import PaperSource, Reading, plan_reading
from digest.publish.views import Archive, ProfileInfo, from_display_copy
from digest.rank.query import profile_text

__all__ = ["PaperSource", "PublishError", "PublishReport", "publish"]

#: progress(done, total, label): called after each planned file is checked or written.
ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What one publish did."""

    out_dir: Path
    written: int  #: files rendered and written (new or changed)
    unchanged: int  #: files whose inputs (or bytes) were unchanged: not rewritten
    removed: int  #: files of an earlier publish that are no longer part of the site
    total: int  #: files the site consists of now
    days: int  #: days published
    papers: int  #: papers published (each listed on its day page)
    ranked_days: int  #: days ranked this time (the others came from the cache)
    written_paths: tuple[str, ...] = ()  #: relative paths of the written files
    read_days: int = 0  #: days whose papers were read and whose pages were planned

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"published {self.total} files to {self.out_dir}: {self.written} written, "
            f"{self.unchanged} unchanged, {self.removed} removed "
            f"({self.days} days, {self.papers} papers)"
        )


def publish(
    config: Config,
    papers: Sequence[Paper] | PaperSource,
    now: datetime,
    *,
    ranker: RankFn,
    out_dir: Path | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    full: bool = False,
    reopen: SourceOpener | None = None,
    terms: TermsFn | None = None,
    related: str = "",
) -> PublishReport:
    """Write (or bring up to date) the static archive of `papers` (the store, or the
    stored papers) up to `now`.

    `ranker` ranks the days whose cached picks are stale (`rank.rank`). `out_dir` defaults
    to `[publish] dir`. `workers` is the number of processes that build days (None: one
    per CPU when many days need ranking); they read the store through `reopen` (without
    it, days are built in this process). `full` reads and plans every day, not only the
    ones that may have changed. `terms` reads the papers' kept terms for the search index
    (`window.KeptTerms`; without it their texts are analysed). `related`: which
    related-terms table `ranker` reads (`bridges.related_stamp`), part of the picks' cache
    key. Raises `PublishError` when the directory cannot be written.
    """
    out = Path(out_dir if out_dir is not None else config.publish.dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = (out / ".publish.lock").open("a")
    except OSError as exc:
        raise PublishError(f"{out}: cannot create the output directory ({exc.strerror})") from None
    # Two publishes into one directory (the scheduler and a manual run) take turns: the
    # build state must describe exactly the pages on disk.
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        locked = functools.partial(_publish_locked, config, papers, now, ranker, out, progress)
        try:
            try:
                return locked(workers, full, reopen, terms, related)
            except DamagedState:
                # A saved day's picks could not be read back: build every day again
                # (which reads no saved picks but ranks the days whose are damaged).
                return locked(workers, True, reopen, terms, related)
        except OSError as exc:
            raise PublishError(f"{out}: cannot write the site ({exc})") from None


def _publish_locked(
    config: Config,
    given: Sequence[Paper] | PaperSource,
    now: datetime,
    ranker: RankFn,
    out: Path,
    progress: ProgressFn | None,
    workers: int | None,
    full: bool,
    reopen: SourceOpener | None,
    terms: TermsFn | None,
    related: str,
) -> PublishReport:
    manifest = Manifest.load(out)
    env = site_environment(config.templates_dir)
    globals_key = inputs_hash(
        SITE_VERSION, SEARCH_FORMAT, config.digest_title, template_hash(env, TEMPLATES)
    )
    basis = ranking_basis(config.profiles, config.ranking, config.synonyms or None, related)
    today = day_of(now if now.tzinfo else now.replace(tzinfo=UTC))
    # Only a saved state made with the same ranking and templates may stand for days
    # that are not read again.
    incremental = (
        not full
        and manifest.complete
        and (manifest.basis, manifest.globals_key) == (basis, globals_key)
    )
    source, reading = plan_reading(given, manifest, today, incremental=incremental)
    since = reading.since
    kept = {d: s for d, s in manifest.days.items() if since is not None and d < since}
    profiles = config.profiles
    infos = tuple(
        ProfileInfo(p.name, slug, *map(tuple, profile_text(p)))
        for p, slug in zip(profiles, unique_slugs([p.name for p in profiles]), strict=True)
    )
    site = SiteContext(config, out, globals_key, basis, infos, ranker, terms)
    jobs = []
    before = max(kept, default=None)
    for days in month_chunks(reading.days):
        saved = {d: manifest.days[d] for d in days if d in manifest.days}
        jobs.append(DaysJob(tuple(days), before, saved))
        before = days[-1]
    to_rank = sum(len(j.days) - len(j.saved) for j in jobs) if incremental else len(reading.days)
    results = run_chunks(jobs, site, source, reopen if source is given else None, workers, to_rank)

    states = dict(kept)
    written: list[str] = []
    done = 0
    for result in results:
        states.update(result.states)
        written += result.written
        for path in result.planned:
            done += 1
            if progress:
                progress(done, done + len(infos) * 3 + 8, path)
    archive = _site_archive(config, infos, states)
    site_wide: list[Page] = static_pages(env)
    site_wide.append(index_page(archive, env, globals_key))
    site_wide += profile_pages(archive, env, globals_key)
    site_wide += feed_pages(archive, env, globals_key)
    site_wide += search_pages(archive, out, config.synonyms or None)
    site_wide += sitemap_pages(archive, env, _sitemap_paths(archive, site_wide, states))

    old_keys = dict(manifest.pages)
    for state in manifest.days.values():
        old_keys.update(state.pages)
    total = done + len(site_wide)
    for page in site_wide:
        target = out / page.path
        if old_keys.get(page.path) != page.key or not target.exists():
            data = page.render()
            if not same_content(target, data):
                write_atomic(target, data)
                written.append(page.path)
        done += 1
        if progress:
            progress(done, total, page.path)
    current = {p.path for p in site_wide} | {path for s in states.values() for path in s.pages}
    removed = _remove_stale(out, set(old_keys) - current)
    _remove_day_states(out, set(manifest.days) - set(states), set(states), reading)
    manifest = Manifest(
        pages={p.path: p.key for p in site_wide},
        row=reading.row,
        through=today,
        basis=basis,
        globals_key=globals_key,
        days=states,
    )
    text = manifest.dumps().encode("utf-8")
    if not same_content(out / MANIFEST_NAME, text):
        write_atomic(out / MANIFEST_NAME, text)
    return PublishReport(
        out_dir=out,
        written=len(written),
        unchanged=len(current) - len(written),
        removed=removed,
        total=len(current),
        days=len(archive.days),
        papers=sum(archive.counts.values()),
        ranked_days=sum(r.ranked for r in results),
        written_paths=tuple(written),
        read_days=sum(len(r.states) for r in results),
    )


class SavedPicks(Mapping[date, list[Pick]]):
    """Each day's picks from its saved state, parsed when first asked for; the display
    copies of its picked papers go into `papers` then. The site-wide pages of a new day
    show the picks of some thirty days (index, profile front pages, the month's pages,
    feeds); a year holds 365."""

    def __init__(self, states: Mapping[date, DayState], papers: dict[str, Paper]) -> None:
        self._states, self._papers = states, papers
        self._parsed: dict[date, list[Pick]] = {}

    def __getitem__(self, day: date) -> list[Pick]:
        got = self._parsed.get(day)
        if got is None:
            raw_picks, raw_papers = self._states[day].details()
            try:
                got = [pick_from_json(day, raw) for raw in raw_picks]
                for pid, raw in raw_papers.items():
                    self._papers.setdefault(pid, from_display_copy(raw))
            except (KeyError, TypeError, ValueError):
                raise DamagedState(f"the saved picks of {day} are damaged") from None
            self._parsed[day] = got
        return got

    def __iter__(self) -> Iterator[date]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)


def _site_archive(
    config: Config, infos: Sequence[ProfileInfo], states: dict[date, DayState]
) -> Archive:
    """What the site-wide pages are made of: every day's saved state (counts, keys, and
    when a page shows them its picks and display copies of the picked papers); no day's
    papers."""
    papers: dict[str, Paper] = {}
    picks = SavedPicks(states, papers)
    archive = Archive(
        title=config.digest_title,
        base_url=config.publish.base_url,
        profiles=list(infos),
        days=sorted(states, reverse=True),
        counts={d: s.count for d, s in states.items()},
        day_keys={d: s.key for d, s in states.items()},
        picks=picks,
        papers=papers,
        day_papers={},
        fingerprints={},
        recent_days=config.publish.recent_days,
        feed_entries=config.publish.feed_entries,
        subscribe_url=_subscribe_url(config),
        pick_counts={d: s.per_profile for d, s in states.items()},
    )
    return archive  # no `index_picks`: only permalinks (day pages) show a paper's picks


def _sitemap_paths(
    archive: Archive, site_wide: list[Page], states: dict[date, DayState]
) -> list[tuple[str, date | None]]:
    """Every HTML page (index first) with the day it last changed for."""
    newest = archive.days[0] if archive.days else None
    day_of_page = {path: d for d, s in states.items() for path in s.pages}
    paths: list[tuple[str, date | None]] = [("", newest)]
    paths += [(p.path, newest) for p in site_wide if p.path.startswith("profiles/")]
    owned_html = [(path, d) for path, d in day_of_page.items() if path.endswith(".html")]
    owned_html.sort(key=lambda pd: (not pd[0].startswith("days/"), -pd[1].toordinal(), pd[0]))
    paths += owned_html
    return paths


def _remove_day_states(out: Path, gone: set[date], current: set[date], reading: Reading) -> None:
    """Delete the saved state of days no longer published; after a full reading, also
    any state file in the directory that no published day owns (a lost manifest's)."""
    for day in gone:
        day_path(out, day).unlink(missing_ok=True)
    if reading.since is None and (out / DAYS_DIR).is_dir():
        names = {day_path(out, d).name for d in current}
        for path in (out / DAYS_DIR).glob("*.json"):
            if path.name not in names:
                path.unlink(missing_ok=True)


def _remove_stale(out: Path, paths: set[str]) -> int:
    """Delete files an earlier publish wrote that are no longer part of the site."""
    removed = 0
    for path in sorted(paths):
        rel = PurePosixPath(path)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            continue  # a tampered manifest must not delete anything outside the site
        target = out.joinpath(*rel.parts)
        if target.is_file():
            target.unlink()
            removed += 1
    return removed


def _subscribe_url(config: Config) -> str:
    """Where the index's subscribe form points: only a configured public_url (a reader of
    the static files has no `digest serve` of their own to post to)."""
    url = config.delivery.public_url
    return (url if url.endswith("/") else url + "/") + "subscribe" if url else ""
