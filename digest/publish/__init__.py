"""The static web archive: day pages, profile pages, paper permalinks, Atom, search.

    publish(config, papers, now, ranker=rank.rank) -> PublishReport

The pipeline hands in the stored papers and the ranker (`pipeline.publish` does it for the
CLI and the scheduler); this package writes files and knows nothing of the store or of
the order of the day's stages.

A day is a UTC `first_seen` date of the stored papers (days after `now` are left out:
they are not published yet). Every configured profile ranks each day's papers as the
digest of that day would have (`now` = the end of the day). The output is a directory
of static files with relative links only, so it works from file:// and under any path:

    index.html                recent days, top picks, every day and profile, search box
    days/YYYY-MM-DD.html      one day's digest: a section per profile, the other papers
    profiles/<slug>.html      one profile's picks across days, newest first
    papers/<paper-id>.html    a permalink per paper (its name depends on the id only)
    feeds/<slug>.atom         Atom per profile; feeds/all.atom for every profile's picks
    sitemap.xml               only when [publish] base_url is set (sitemaps need absolute URLs)
    search-index.js           titles and abstracts for static/search.js
    .publish-manifest.json    inputs hash per file and each day's cached picks

Publishing is incremental: a file whose inputs are unchanged is not rendered, and a file
whose rendering is byte-identical is not rewritten, so mtimes say what really changed.
Files the previous publish wrote that are no longer part of the site are removed.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath

from digest.codec import paper_fingerprint
from digest.config import Config
from digest.errors import PublishError
from digest.model import Paper
from digest.publish.feeds import feed_pages, search_index_page, sitemap_pages, static_pages
from digest.publish.manifest import MANIFEST_NAME, Manifest, inputs_hash, same_content, write_atomic
from digest.publish.names import day_of, paper_file, plain, shorten, unique_slugs
from digest.publish.picks import (
    RankFn,
    day_key,
    pick_from_json,
    pick_to_json,
    rank_days_parallel,
    ranking_basis,
)
from digest.publish.site import SITE_VERSION, TEMPLATES, Page, html_pages, template_hash
from digest.publish.views import Archive, ProfileInfo
from digest.rank.query import profile_text
from digest.render import make_environment

__all__ = ["PublishError", "PublishReport", "publish"]

#: progress(done, total, label): called after each file is checked or written.
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
    papers: int  #: papers published (one permalink each)
    ranked_days: int  #: days ranked this time (the others came from the cache)
    written_paths: tuple[str, ...] = ()  #: relative paths of the written files

    def summary(self) -> str:
        """One line for the CLI."""
        return (
            f"published {self.total} files to {self.out_dir}: {self.written} written, "
            f"{self.unchanged} unchanged, {self.removed} removed "
            f"({self.days} days, {self.papers} papers)"
        )


def publish(
    config: Config,
    papers: Sequence[Paper],
    now: datetime,
    *,
    ranker: RankFn,
    out_dir: Path | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> PublishReport:
    """Write (or bring up to date) the static archive of `papers` (the stored ones) up to `now`.

    `ranker` ranks the days whose cached picks are stale (`rank.rank`). `out_dir` defaults
    to `[publish] dir`. `workers` is the number of processes that rank days (None: one
    per CPU when many days need ranking). Raises `PublishError` when the directory
    cannot be written.
    """
    out = Path(out_dir if out_dir is not None else config.publish.dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = (out / ".publish.lock").open("a")
    except OSError as exc:
        raise PublishError(f"{out}: cannot create the output directory ({exc.strerror})") from None
    # Two publishes into one directory (the scheduler and a manual run) take turns: the
    # manifest must describe exactly the pages on disk.
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _publish_locked(config, papers, now, ranker, out, progress, workers)


def _publish_locked(
    config: Config,
    papers: Sequence[Paper],
    now: datetime,
    ranker: RankFn,
    out: Path,
    progress: ProgressFn | None,
    workers: int | None,
) -> PublishReport:
    manifest = Manifest.load(out)
    archive, ranked = _build_archive(config, papers, now, ranker, manifest, workers)
    env = make_environment(config.templates_dir)
    env.filters.update(plain=plain, shorten=shorten)
    globals_key = inputs_hash(SITE_VERSION, archive.title, template_hash(env, TEMPLATES))

    pages: list[Page] = static_pages(env)
    pages += html_pages(archive, env, globals_key)
    pages += feed_pages(archive, env, globals_key)
    pages.append(search_index_page(archive))
    sitemap_paths: list[tuple[str, date | None]] = [("", archive.days[0] if archive.days else None)]
    sitemap_paths += [(f"days/{d.isoformat()}.html", d) for d in archive.days]
    sitemap_paths += [(p.page, archive.days[0] if archive.days else None) for p in archive.profiles]
    sitemap_paths += [
        (f"papers/{paper_file(p.id)}", archive.day_of_paper(p)) for p in archive.papers.values()
    ]
    pages += sitemap_pages(archive, env, sitemap_paths)

    written: list[str] = []
    new_pages: dict[str, str] = {}
    try:
        for done, page in enumerate(pages, 1):
            target = out / page.path
            new_pages[page.path] = page.key
            if manifest.pages.get(page.path) != page.key or not target.exists():
                data = page.render()
                if not same_content(target, data):
                    write_atomic(target, data)
                    written.append(page.path)
            if progress:
                progress(done, len(pages), page.path)
        removed = _remove_stale(out, set(manifest.pages) - set(new_pages))
        manifest.pages = new_pages
        text = manifest.dumps().encode("utf-8")
        if not same_content(out / MANIFEST_NAME, text):
            write_atomic(out / MANIFEST_NAME, text)
    except OSError as exc:
        raise PublishError(f"{out}: cannot write the site ({exc})") from None
    return PublishReport(
        out_dir=out,
        written=len(written),
        unchanged=len(pages) - len(written),
        removed=removed,
        total=len(pages),
        days=len(archive.days),
        papers=len(archive.papers),
        ranked_days=ranked,
        written_paths=tuple(written),
    )


def _build_archive(
    config: Config,
    stored: Sequence[Paper],
    now: datetime,
    ranker: RankFn,
    manifest: Manifest,
    workers: int | None,
) -> tuple[Archive, int]:
    """Group the stored papers by day, rank the days whose cache is stale; updates
    `manifest.days` in place. Returns the archive and how many days were ranked."""
    today = day_of(now if now.tzinfo else now.replace(tzinfo=UTC))
    by_day: dict[date, list[Paper]] = {}
    for paper in stored:
        if paper.first_seen is None:
            continue
        day = day_of(paper.first_seen)
        if day <= today:
            by_day.setdefault(day, []).append(paper)
    days = sorted(by_day, reverse=True)
    papers = {p.id: p for day in days for p in by_day[day]}
    fingerprints = {pid: paper_fingerprint(p) for pid, p in papers.items()}

    profiles = list(config.profiles)
    settings = config.ranking
    synonyms = config.synonyms or None
    basis = ranking_basis(profiles, settings, synonyms)
    keys = {d: day_key(basis, d, [fingerprints[p.id] for p in by_day[d]]) for d in days}
    picks = {}
    stale = []
    for d in days:
        cached = manifest.days.get(d.isoformat())
        if cached and cached.get("key") == keys[d]:
            try:
                picks[d] = [pick_from_json(d, raw) for raw in cached["picks"]]
                continue
            except (KeyError, TypeError, ValueError):
                pass  # a damaged cache entry: rank the day again
        stale.append(d)
    if stale:
        fresh = rank_days_parallel(
            [(d, by_day[d]) for d in stale], profiles, settings, synonyms, ranker, workers
        )
        picks.update(fresh)
    manifest.days = {
        d.isoformat(): {"key": keys[d], "picks": [pick_to_json(p) for p in picks[d]]} for d in days
    }
    names = [p.name for p in config.profiles]
    infos = [
        ProfileInfo(p.name, slug, *map(tuple, profile_text(p)))
        for p, slug in zip(config.profiles, unique_slugs(names), strict=True)
    ]
    archive = Archive(
        title=config.digest_title,
        base_url=config.publish.base_url,
        profiles=infos,
        papers=papers,
        fingerprints=fingerprints,
        days=days,
        day_papers=by_day,
        day_keys=keys,
        picks=picks,
        recent_days=config.publish.recent_days,
        feed_entries=config.publish.feed_entries,
    )
    archive.index_picks()
    return archive, len(stale)


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
