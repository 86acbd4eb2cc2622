"""The daily job, and the only place that knows the order of the stages.

    sources -> store -> rank -> render -> (deliver, publish: later issues)

Each function takes the config, an open store and an explicit `now`; none reads the
clock or prints. Progress is reported through an optional callback so the CLI can
draw a bar on a terminal and stay quiet when piped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from digest import rank
from digest.config import Config, ProfileConfig, SourceConfig
from digest.errors import ConfigError, DigestError, QueryError, RenderError
from digest.model import Digest, DigestItem, DigestSection, Paper, Profile, SourceWarning
from digest.render import make_environment, render_digest
from digest.sources import parser_for
from digest.sources.files import expand, modified_date, read_capture
from digest.store import IngestCounts, Store

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
    now: datetime | None = None,
    progress: ProgressFn | None = None,
    client: Any = None,
) -> IngestReport:
    """Read the configured sources (or `paths`), parse them and merge them into the store.

    One transaction per file or URL: an input that fails to read or parse adds nothing
    and the others go on. Errors are collected, never raised, so one bad source never
    costs the good ones. URL sources are fetched politely (`sources.fetch`; `client` is
    the httpx client to use, for tests) and stamped with the fetch time `now`.
    """
    jobs, errors = _plan(config, paths)
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
            captured = job.source.captured or modified_date(job.path)
            papers = list(
                parser(
                    data,
                    origin=str(job.path),
                    source=job.source.name,
                    captured=captured,
                    warn=file_warnings.append,
                )
            )
            counts += store.add_papers(papers)
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
    return IngestReport(
        files=len(jobs) + (url_report.files if url_report else 0),
        entries=entries,
        counts=counts,
        malformed=malformed,
        warnings=tuple(warnings),
        errors=tuple(errors),
    )


def _ingest_urls(config: Config, store: Store, now: datetime | None, client: Any) -> IngestReport:
    """Fetch every `url` source; a failing one is reported and the others go on."""
    from dataclasses import replace as with_

    from digest.sources.fetch import FetchState, HostGate, fetch

    sources = [s for s in config.sources if s.url]
    if not sources:
        return IngestReport()
    now = now or datetime.now(UTC)  # the CLI always passes it; this is for library callers
    gate = HostGate()
    counts, entries, malformed = IngestCounts(), 0, 0
    warnings: list[SourceWarning] = []
    errors: list[str] = []
    for source in sources:
        url = (source.url or "").replace("{date}", now.date().isoformat())
        kept = store.fetch_state(source.name)
        state = FetchState.from_json(kept[1] if kept and kept[0] == url else None)
        parser = parser_for(source.kind)
        assert parser is not None  # config validation checked the kind
        try:
            accept = "application/json" if source.kind == "hf_daily" else None
            result = fetch(url, state=state, client=client, gate=gate, accept=accept)
            if result.status == "not_modified":
                store.save_fetch_state(source.name, url, state.to_json(), now, "not modified")
                continue
            found: list[SourceWarning] = []
            papers = [
                with_(p, first_seen=now, last_seen=now) if p.first_seen else with_(p, last_seen=now)
                for p in parser(
                    result.data,
                    origin=url,
                    source=source.name,
                    captured=now.date(),
                    warn=found.append,
                )
            ]
            counts += store.add_papers(papers)
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


def _plan(config: Config, paths: Sequence[str]) -> tuple[list[_Job], list[str]]:
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
    manual = SourceConfig(name="files", kind="listing")
    for pattern in paths:
        found = expand(pattern, Path.cwd())
        if not found or (len(found) == 1 and not found[0].exists()):
            errors.append(f"{pattern}: no such file or directory")
            continue
        for file in found:
            jobs.append(_Job(file, configured.get(file.resolve(), manual)))
    return jobs, errors


def profile_from_config(config: Config, prof: ProfileConfig) -> Profile:
    """A config profile parsed by the ranker; errors name the file and the profile."""
    try:
        return rank.make_profile(
            prof.name,
            prof.keywords,
            prof.exclude,
            prof.max_items,
            prof.min_score,
            defaults=rank_settings(config),
        )
    except QueryError as exc:
        raise ConfigError(f"{config.path}: profile {prof.name!r}: {exc}") from None


def rank_settings(config: Config) -> rank.RankSettings:
    """`[ranking]` in config.toml onto RankSettings; unknown keys are named in the error."""
    fields = set(rank.RankSettings.__dataclass_fields__)
    unknown = sorted(set(config.ranking) - fields)
    if unknown:
        raise ConfigError(
            f"{config.path}: ranking.{unknown[0]} = {config.ranking[unknown[0]]!r}: unknown "
            f"key; expected one of: {', '.join(sorted(fields))}"
        )
    defaults = rank.RankSettings()
    values: dict[str, object] = {}
    for key, value in config.ranking.items():
        if isinstance(getattr(defaults, key), int) and not float(value).is_integer():
            raise ConfigError(f"{config.path}: ranking.{key} = {value!r}: must be a whole number")
        if not math.isfinite(value) or value < 0:
            raise ConfigError(
                f"{config.path}: ranking.{key} = {value!r}: must be a finite number >= 0"
            )
        values[key] = type(getattr(defaults, key))(value)
    settings = rank.RankSettings(**values)  # type: ignore[arg-type]
    unit = ("b", "exact_share", "scattered_credit", "default_min_score")
    for key in unit:
        if getattr(settings, key) > 1:
            raise ConfigError(
                f"{config.path}: ranking.{key} = {getattr(settings, key)!r}: "
                "must be between 0 and 1"
            )
    if settings.popularity_weight + settings.recency_weight > 1:
        raise ConfigError(
            f"{config.path}: ranking.popularity_weight + ranking.recency_weight = "
            f"{settings.popularity_weight + settings.recency_weight:g}: must be at most 1"
        )
    return settings


def build_digest(
    config: Config,
    papers: Sequence[Paper],
    profiles: Sequence[Profile],
    now: datetime,
    *,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> Digest:
    """Rank `papers` for each profile and assemble the digest (pure: no I/O)."""
    ranked = rank.rank(
        papers, profiles, now, rank_settings(config), synonyms=config.synonyms or None
    )
    sections = tuple(DigestSection(p, items) for p, items in zip(profiles, ranked, strict=True))
    return Digest(
        day=now.date(),
        title=title or config.digest_title,
        sections=sections,
        papers_considered=len(papers),
        notes=tuple(notes),
    )


def rank_stored(
    config: Config, store: Store, profile: Profile, now: datetime, since: date | None = None
) -> list[DigestItem]:
    """What a digest for `profile` would hold today, best first."""
    papers = store.papers(since=since)
    (items,) = rank.rank(
        papers, [profile], now, rank_settings(config), synonyms=config.synonyms or None
    )
    return list(items)


def preview(
    config: Config,
    store: Store,
    profile: Profile,
    now: datetime,
    fmt: str = "markdown",
    since: date | None = None,
) -> tuple[Digest, str]:
    """Rank the stored papers for one profile and render the digest."""
    papers = store.papers(since=since)
    notes = [] if papers else ["The store holds no papers yet: run `digest ingest` first."]
    digest = build_digest(config, papers, [profile], now, notes=notes)
    env = make_environment(config.templates_dir)
    text = render_digest(
        digest, fmt, env=env, now=now, base_url=config.publish.base_url, intro=config.intro
    )
    return digest, text


@dataclass(frozen=True, slots=True)
class RunReport:
    """What the daily job did."""

    ingest: IngestReport
    digest: Digest
    written: tuple[Path, ...] = field(default_factory=tuple)
    send: Any = None  #: digest.send.SendReport, when a backend was given
    publish: Any = None  #: digest.publish.PublishReport


def run(
    config: Config,
    store: Store,
    now: datetime,
    *,
    backend: Any = None,
    progress: ProgressFn | None = None,
) -> RunReport:
    """The daily job: ingest -> the config profiles' digest -> send -> publish.

    The config profiles' digest is written as Markdown and HTML under the preview
    directory, named by day; subscribers due now get theirs through `backend` (skipped
    when None); the static archive is published last.
    """
    from digest.publish import publish
    from digest.send import send

    report = ingest(config, store, now=now, progress=progress)
    profiles = [profile_from_config(config, p) for p in config.profiles]
    papers = store.papers()
    source_notes = [f"A source failed: {e}" for e in report.errors]
    notes = list(source_notes)
    if not papers:
        notes.append("No papers: the sources gave nothing.")
    if not profiles:
        notes.append(f"No [[profiles]] in {config.path}: add one to get a digest.")
    digest = build_digest(config, papers, profiles, now, notes=notes)
    env = make_environment(config.templates_dir)
    out_dir = config.preview_dir
    written = []
    for fmt, ext in (("markdown", "md"), ("html", "html")):
        target = out_dir / f"digest-{digest.day.isoformat()}.{ext}"
        text = render_digest(
            digest, fmt, env=env, now=now, base_url=config.publish.base_url, intro=config.intro
        )
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(target, text)
        except OSError as exc:
            raise RenderError(
                f"{out_dir}: cannot write the digest ({exc.strerror}); "
                "fix the directory's permissions or set [render] preview_dir"
            ) from None
        written.append(target)
    sent = None
    if backend is not None:
        sent = send(config, store, backend, now, progress=progress, notes=source_notes)
    site = publish(config, store, now, progress=progress)
    return RunReport(ingest=report, digest=digest, written=tuple(written), send=sent, publish=site)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
