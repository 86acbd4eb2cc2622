"""The only place that knows the order of the stages.

    ingest (sources -> store) -> rank -> render -> send (deliver) -> publish (site)

    ingest      read the configured sources (or files) into the store
    preview     rank the papers that arrived in a window for one profile; render the digest
    send_due    each reader who is due gets the day's digest, exactly once
    retry_due   pending digests and retries whose backoff ended (the retry sweep)
    publish     the static archive of the stored papers
    fetch       ingest, then publish (the scheduler's fetch job)
    subscribe   add or edit a reader, then mail the confirmation link
    run         the daily job: ingest, the config profiles' digest, send, publish

The CLI, the scheduler and the web pages call these; the stages themselves never call
one another. Each function takes the config, an open store and an explicit `now`; none
reads the clock or prints. Progress is reported through an optional callback so the CLI
can draw a bar on a terminal and stay quiet when piped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.compose import build_digest
from digest.model import Digest, DigestItem, Profile

if TYPE_CHECKING:
    # The stages are imported where they are used, so a command that needs one of them
    # (subscribe, ingest) does not pay for the others (numpy, scipy, Jinja, feedparser).
    import httpx

    from digest import publish as site
    from digest import rank, send, subscriptions
    from digest.config import Config
    from digest.deliver import Backend
    from digest.enrol import ImportReport, import_subscribers
    from digest.ingest import IngestReport, ingest
    from digest.store import Store
    from digest.window import Window, kept_terms, recent_window, stored_papers, window_since

__all__ = [
    "FetchReport",
    "ImportReport",
    "IngestReport",
    "RunReport",
    "SubscribeReport",
    "Window",
    "build_digest",
    "fetch",
    "import_subscribers",
    "ingest",
    "kept_terms",
    "preview",
    "publish",
    "rank_stored",
    "recent_window",
    "retry_due",
    "run",
    "send_due",
    "stored_papers",
    "subscribe",
    "window_since",
]

#: The note readers' digests carry when a source failed (the details go to the operator).
SOURCE_FAILED = "A source failed today, so some new papers may be missing from this digest."
#: progress(done, total, label): called after each unit of work.
ProgressFn = Callable[[int, int, str], None]


def rank_stored(
    config: Config,
    store: Store,
    profile: Profile,
    now: datetime,
    window: Window | None = None,
    sent: Collection[str] = (),
    rated: Sequence[rank.Rated] = (),
) -> list[DigestItem]:
    """What a digest for `profile` would hold of the papers in `window` (default: every
    stored paper), best first; `sent`, `rated`: a reader's sent papers and ratings."""
    from digest.bridges import related_for
    from digest.window import kept_terms, kept_vectors, stored_papers

    papers = stored_papers(store, window)
    blobs, dense = kept_terms(config, store, papers), kept_vectors(config, store, papers)
    related = related_for(config, store, (*profile.keywords, *profile.exclude))
    digest = build_digest(
        config,
        papers,
        [profile],
        now,
        blobs=blobs,
        sent=sent,
        rated=rated,
        dense=dense,
        related=related,
    )
    return list(digest.sections[0].items)


def preview(
    config: Config,
    store: Store,
    profile: Profile,
    now: datetime,
    fmt: str = "markdown",
    window: Window | None = None,
    sent: Collection[str] = (),
    rated: Sequence[rank.Rated] = (),
    keep_keywords: bool = True,
) -> tuple[Digest, str]:
    """Rank the papers in `window` (default: every stored paper) for one profile and render
    the digest; `Digest.papers_considered` tells an empty window from no match. `sent`,
    `rated`: a reader's sent papers and ratings (`digest preview --subscriber`);
    `keep_keywords`: False for keywords anonymous visitors typed (`window.kept_vectors`)."""
    from digest.bridges import related_for
    from digest.render import make_environment, render_digest
    from digest.window import kept_terms, kept_vectors, stored_papers

    papers = stored_papers(store, window)
    notes = [] if papers else ["The store holds no papers yet: run `digest ingest` first."]
    if not papers and window is not None and window.after is not None and store.count_papers():
        notes = [f"No papers arrived {window.label}."]
    blobs = kept_terms(config, store, papers)
    dense = kept_vectors(config, store, papers, keep_keywords)
    related = related_for(config, store, (*profile.keywords, *profile.exclude))
    digest = build_digest(
        config,
        papers,
        [profile],
        now,
        notes=notes,
        blobs=blobs,
        sent=sent,
        rated=rated,
        dense=dense,
        related=related,
    )
    env = make_environment(config.templates_dir)
    text = render_digest(
        digest, fmt, env=env, now=now, base_url=config.publish.base_url, intro=config.intro
    )
    return digest, text


def send_due(
    config: Config,
    store: Store,
    backend: Backend | None,
    now: datetime,
    *,
    dry_run: bool = False,
    digest_date: date | None = None,
    progress: ProgressFn | None = None,
    notes: Sequence[str] = (),
) -> send.SendReport:
    """Each confirmed reader who is due gets the day's digest, exactly once (`send.send`)."""
    from digest import send

    return send.send(
        config,
        store,
        backend,
        now,
        dry_run=dry_run,
        digest_date=digest_date,
        progress=progress,
        notes=notes,
    )


def retry_due(
    config: Config,
    store: Store,
    backend: Backend,
    now: datetime,
    *,
    progress: ProgressFn | None = None,
) -> send.SendReport:
    """Deliver what is pending and the retries whose backoff has ended; claim nothing
    (`send.retry_due`: the scheduler's retry sweep)."""
    from digest import send

    return send.retry_due(config, store, backend, now, progress=progress)


def publish(
    config: Config,
    store: Store,
    now: datetime,
    *,
    out_dir: Path | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    full: bool = False,
) -> site.PublishReport:
    """The static archive of every stored paper up to `now`, ranked by `rank.rank` on the
    terms ingest kept (`window.KeptTermsRanker`). The
    store itself is handed in, so a publish reads only the days that may have changed
    (`full=True`: every day)."""
    from digest import publish as site
    from digest.bridges import related_stamp
    from digest.window import KeptTerms, KeptTermsRanker

    return site.publish(
        config,
        store,
        now,
        ranker=KeptTermsRanker(store.location),
        out_dir=out_dir,
        progress=progress,
        workers=workers,
        full=full,
        reopen=functools.partial(type(store), store.location),  # workers read it themselves
        terms=KeptTerms(store.location),
        related=related_stamp(config, store),
    )


@dataclass(frozen=True, slots=True)
class FetchReport:
    """What the scheduler's fetch job did."""

    ingest: IngestReport
    publish: site.PublishReport

    def summary(self) -> str:
        return f"{self.ingest.summary()}; {self.publish.summary()}"


def fetch(
    config: Config, store: Store, now: datetime, *, client: httpx.Client | None = None
) -> FetchReport:
    """Ingest every source, then publish the archive."""
    from digest.ingest import ingest

    report = ingest(config, store, now=now, client=client)
    return FetchReport(report, publish(config, store, now))


@dataclass(frozen=True, slots=True)
class SubscribeReport:
    """What `subscribe` did, and what became of the confirmation email."""

    result: subscriptions.SubscribeResult
    #: "" when no confirmation was needed, else the backend's "sent" | "retry" | "failed".
    confirmation: str = ""
    #: The confirmation email's delivery id (the outbox's file name), "" when none.
    confirmation_id: str = ""


def subscribe(
    config: Config,
    store: Store,
    address: str,
    profile: Profile | None,
    now: datetime,
    *,
    open_backend: Callable[[], Backend],
    timezone: str | None = None,
    send_at: str | None = None,
    frequency: str | None = None,
    notify_empty: bool | None = None,
    confirmed: bool = False,
) -> SubscribeReport:
    """Add or edit a reader (`subscriptions.subscribe`), then mail the confirmation link
    when the address is not confirmed yet, through a backend from `open_backend` (opened
    only then, so a confirmed import needs no mail credentials)."""
    from digest import subscriptions
    from digest.render.notices import confirmation_email

    result = subscriptions.subscribe(
        config,
        store,
        address,
        profile,
        now,
        timezone=timezone,
        send_at=send_at,
        frequency=frequency,
        notify_empty=notify_empty,
        confirmed=confirmed,
    )
    if not result.confirm_link:
        return SubscribeReport(result)
    email = confirmation_email(config.delivery, result.subscriber, result.confirm_link, now)
    backend = open_backend()
    try:
        (outcome,) = backend.send([email])
    finally:
        backend.close()
    return SubscribeReport(result, outcome.status, email.delivery_id)


@dataclass(frozen=True, slots=True)
class RunReport:
    """What the daily job did."""

    ingest: IngestReport
    digest: Digest
    written: tuple[Path, ...] = field(default_factory=tuple)
    send: send.SendReport | None = None  #: None when no backend was given
    publish: site.PublishReport | None = None
    #: Why the preview digest could not be written ("" = it was): the run went on.
    preview_error: str = ""

    @property
    def exit_code(self) -> int:
        """0 done; 1 done with failures (a source, the preview, deliveries to retry or
        failed); 2 the send paused (the sender or key is refused: fix [delivery])."""
        if self.send is not None and self.send.exit_code == 2:
            return 2
        failures = self.ingest.errors or self.preview_error
        return 1 if failures or (self.send is not None and self.send.exit_code) else 0


def run(
    config: Config,
    store: Store,
    now: datetime,
    *,
    backend: Backend | None = None,
    progress: ProgressFn | None = None,
) -> RunReport:
    """The daily job: ingest -> the config profiles' digest -> send -> publish.

    The config profiles' digest (of what arrived in the last day, as a reader's first
    digest) is written as Markdown and HTML under the preview directory, named by day;
    subscribers due now get theirs through `backend` (skipped when None); the static
    archive is published last.
    """
    from digest.bridges import related_for
    from digest.ingest import ingest
    from digest.render import make_environment, render_digest
    from digest.window import kept_terms, kept_vectors, recent_window, stored_papers

    report = ingest(config, store, now=now, progress=progress)
    profiles = list(config.profiles)
    papers = stored_papers(store, recent_window(now))  # what a first digest would hold
    # Readers see that a source failed, never which URL or path (query keys, local
    # paths): the operator gets the errors themselves in the report.
    source_notes = [SOURCE_FAILED] if report.errors else []
    notes = [f"A source failed: {e}" for e in report.errors]  # the operator's preview
    if not papers:
        notes.append("No new papers arrived in the last day: the sources gave nothing new.")
    if not profiles:
        notes.append(f"No [[profiles]] in {config.path}: add one to get a digest.")
    blobs, dense = kept_terms(config, store, papers), kept_vectors(config, store, papers)
    related = related_for(config, store, [k for p in profiles for k in (*p.keywords, *p.exclude)])
    digest = build_digest(
        config, papers, profiles, now, notes=notes, blobs=blobs, dense=dense, related=related
    )
    env = make_environment(config.templates_dir)
    out_dir = config.preview_dir
    written = []
    preview_error = ""
    for fmt, ext in (("markdown", "md"), ("html", "html")):
        target = out_dir / f"digest-{digest.day.isoformat()}.{ext}"
        text = render_digest(
            digest, fmt, env=env, now=now, base_url=config.publish.base_url, intro=config.intro
        )
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(target, text)
        except OSError as exc:  # the operator's copy: readers' digests go out all the same
            preview_error = (
                f"{out_dir}: cannot write the preview digest ({exc.strerror}); "
                "fix the directory's permissions or set [render] preview_dir"
            )
            break
        written.append(target)
    sent = None
    if backend is not None:
        sent = send_due(config, store, backend, now, progress=progress, notes=source_notes)
    published = publish(config, store, now, progress=progress)
    return RunReport(
        ingest=report,
        digest=digest,
        written=tuple(written),
        send=sent,
        publish=published,
        preview_error=preview_error,
    )


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


_WINDOW = ("Window", "recent_window", "window_since", "stored_papers", "kept_terms")


def __getattr__(name: str) -> Any:
    """`pipeline.ingest`, `pipeline.IngestReport`, the bulk import of `digest.enrol` and
    the window helpers of `digest.window` (re-exported), loaded when first used."""
    if name in ("ingest", "IngestReport"):
        import digest.ingest

        return getattr(digest.ingest, name)
    if name in ("import_subscribers", "ImportReport"):
        import digest.enrol

        return getattr(digest.enrol, name)
    if name in _WINDOW:
        import digest.window

        return getattr(digest.window, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
