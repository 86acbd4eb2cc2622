"""bench/day.py's world and phases: the readers and earlier days built once per N
(`prepare`, not timed) and each phase of the measured day (`run_phase`), which day.py
runs in a child process of its own; see day.py's docstring for what each phase does.
"""

from __future__ import annotations

import argparse
import cProfile
import email
import io
import json
import os
import pstats
import random
import resource
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import _day_data as world
from _later import Later

from digest import pipeline
from digest.config import Config, load_config
from digest.deliver import make_backend
from digest.frozen import records_for, thaw_compact
from digest.model import Digest, DigestSection
from digest.rank import make_profile, rank
from digest.render import EmailRenderer, make_environment
from digest.store import Store

ROOT = Path(__file__).resolve().parents[1]

PHASES = ("ingest", "send-outbox", "send-smtp", "publish")


class Budget(Exception):
    """The phase ran past --budget."""


# -- the world, built once per N (not timed) -------------------------------------------


def add_readers(store: Store, readers: list[world.Reader]) -> None:
    """Confirmed subscribers with their profiles, straight into the store (a transaction
    each: `upsert_subscriber` opens its own)."""
    for r in readers:
        for name, keywords, exclude in r.profiles:
            store.upsert_subscriber(
                r.email,
                make_profile(name, keywords, exclude),
                now=r.joined,
                timezone=r.timezone,
                send_at=r.send_at,
                frequency=r.frequency,
                confirmed=True,
            )


def set_status(store: Store, readers: list[world.Reader], status: str, now: datetime) -> None:
    for r in readers:
        sub = store.subscriber_by_email(r.email)
        assert sub is not None
        store.set_subscriber_status(sub.id, status, now)


def prepare(work: Path, n: int, per_day: int) -> dict[str, Any]:
    """The project, every day's capture, the readers, and the earlier days run."""
    work.mkdir(parents=True)
    later = Later(work.parent)
    config = load_config(world.write_project(work), required=True)
    seeds = world.seed_papers()
    for day in world.days():
        world.capture_path(work, day).parent.mkdir(exist_ok=True)
        world.capture_path(work, day).write_text(world.capture(seeds, day, per_day))
    everyone = world.readers(n)
    paused = [r for r in everyone if r.cohort == "paused"]
    backend = make_backend(config.delivery)
    sent, since = 0, world.at(world.days()[0], -48)
    with Store(config.store_path) as store:
        for k, day in enumerate(world.days()[:-1]):
            ingest_at = world.at(day, world.INGEST_AT)
            add_readers(store, [r for r in everyone if since <= r.joined < ingest_at])
            since = ingest_at
            pipeline.ingest(config, store, [str(world.capture_path(work, day))], now=ingest_at)
            sent += pipeline.send_due(config, store, backend, world.at(day, world.SEND_AT)).sent
            pipeline.publish(config, store, world.at(day, world.PUBLISH_AT), out_dir=work / "site")
            later.put(work / config.delivery.outbox_dir)  # the bench deletes it at its end
            if k == 0:  # away from the 2nd earlier day on
                set_status(store, paused, "unsubscribed", world.at(day, 20))
        set_status(store, paused, "confirmed", world.at(world.DAY, 1))
        papers = store.count_papers()
    backend.close()
    smtp = (work / "config.toml").read_text().replace('backend = "outbox"', 'backend = "smtp"')
    (work / "smtp.toml").write_text(smtp + '\n[delivery.smtp]\nhost = "127.0.0.1"\nport = 0\n')
    (work / "world.json").write_text(json.dumps({"readers": n}))
    return {"papers": papers, "history_sent": sent}


# -- the phases, each in a child process -----------------------------------------------


def run_phase(phase: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One phase of the measured day in this process; its figures. The allocator is
    tuned first, as the `digest` command does (`digest.memory`)."""
    from digest.memory import keep_freed_memory

    keep_freed_memory()
    if phase == "send-smtp":
        text = (work / "smtp.toml").read_text().replace("port = 0", f"port = {args.port}")
        (work / "smtp.toml").write_text(text)
    name = "smtp.toml" if phase == "send-smtp" else "config.toml"
    config = load_config(work / name, required=True)
    day, progress = world.DAY, {"sent": 0}
    store = Store(config.store_path)
    backend = make_backend(config.delivery) if phase.startswith("send") else None
    if backend is not None:
        count_rank_calls(progress)
    jobs = {
        "ingest": lambda: pipeline.ingest(
            config, store, [str(world.capture_path(work, day))], now=world.at(day, world.INGEST_AT)
        ),
        "send": lambda: pipeline.send_due(
            config,
            store,
            backend,
            world.at(day, world.SEND_AT),
            progress=lambda done, _total, label: (
                label == "delivering" and progress.update(sent=done)
            ),
        ),
        "publish": lambda: pipeline.publish(
            config, store, world.at(day, world.PUBLISH_AT), out_dir=work / "site"
        ),
        "naive": lambda: naive(config, store, args.sample, progress),
        "rank": lambda: rank_stored(config, store, progress),
    }

    def stop(_signum: int, _frame: object) -> None:
        raise Budget

    signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, args.budget)
    profile = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not wall
    cpu, wall = _cpu(), time.perf_counter()
    try:
        if profile:
            profile.enable()
        result, stopped = jobs[phase.split("-")[0]](), False
    except Budget:
        result, stopped = None, True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if profile:
            profile.disable()
    out: dict[str, Any] = {"cpu": _cpu() - cpu, "wall": time.perf_counter() - wall}
    out.update(stopped=stopped, rss=_peak(resource.RUSAGE_SELF))
    out.update(workers_rss=_peak(resource.RUSAGE_CHILDREN), **progress)
    if result is not None and phase.startswith("send"):
        out.update(due=result.due, claimed=result.claimed, sent=result.sent)
    if phase == "send-outbox":
        out.update(_digest_sizes(store, work / config.delivery.outbox_dir))
    if backend is not None:
        backend.close()
    if phase == "ingest":  # then today's new readers subscribe, each at their time
        n = json.loads((work / "world.json").read_text())["readers"]
        start = world.at(day, world.INGEST_AT)
        add_readers(store, [r for r in world.readers(n) if r.joined >= start])
    store.close()
    if profile:
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(25)
        out["profile"] = text.getvalue()
    return out


def rank_stored(config: Config, store: Store, progress: dict[str, Any]) -> None:
    """`digest rank` in process for one reader's keywords: the default window (what a
    first digest holds: the day's papers) and `--all` (the whole store); CPU of each."""
    from digest.window import Window, recent_window

    now = world.at(world.DAY, world.SEND_AT)
    profile = make_profile("bench", ("LoRA", '"video diffusion"', "RLHF"))
    for name, window in (("rank_day", recent_window(now)), ("rank_all", Window())):
        start = _cpu()
        items = pipeline.rank_stored(config, store, profile, now, window)
        progress[name] = _cpu() - start
        progress[f"{name}_items"] = len(items)


def startup(work: Path, repeat: int = 5) -> dict[str, float]:
    """Median wall seconds of CLI commands that do not rank and whose output does not grow
    with the store (listing 100,000 readers is not start-up), each in a fresh process."""
    out = {}
    for command in (["--help"], ["papers", "--help"], ["subscribers", "export", "--help"]):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "digest", *command],
                cwd=work,
                check=True,
                capture_output=True,
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
            )
            times.append(time.perf_counter() - start)
        out[" ".join(command)] = statistics.median(times)
    return out


def count_rank_calls(progress: dict[str, Any]) -> None:
    """Count the send's ranking calls (`rank.rank_prepared`, one per page of readers) and
    their profiles: the only sign of progress while it plans (its progress callback
    starts with the deliveries)."""
    import digest.rank.ranker as ranker_module

    ranker = ranker_module.rank_prepared
    progress.update(rank_calls=0, profiles_ranked=0)

    def counted(prepared: Any, profiles: Any, *args: Any, **kwargs: Any) -> Any:
        ranked = ranker(prepared, profiles, *args, **kwargs)
        progress["rank_calls"] += 1
        progress["profiles_ranked"] += len(profiles)
        return ranked

    ranker_module.rank_prepared = counted


def naive(config: Config, store: Store, sample: int, progress: dict[str, Any]) -> None:
    """Each sampled reader alone: rank the day's papers for their profiles, then render
    the whole templates (one renderer for all: a loop would keep its environment)."""
    now = world.at(world.DAY, world.SEND_AT)
    papers = store.papers(since=world.DAY)
    readers = store.subscribers(status="confirmed")
    readers = random.Random(3).sample(readers, min(sample, len(readers)))
    renderer = EmailRenderer(make_environment(config.templates_dir))
    start = _cpu()
    for done, sub in enumerate(readers, 1):
        ranked = rank(papers, list(sub.profiles), now, config.ranking)
        sections = tuple(DigestSection(p, i) for p, i in zip(sub.profiles, ranked, strict=True))
        renderer.render_whole(Digest(world.DAY, config.digest_title, sections, len(papers)))
        progress.update(readers=done, per_reader=(_cpu() - start) / done)


def _digest_sizes(store: Store, outbox: Path) -> dict[str, float]:
    """Mean items of the day's digests sent, and mean bytes of their HTML part."""
    sent = [d for d in store.deliveries(state="sent") if d.digest_date == world.DAY]
    html = []
    for path in outbox.glob("*.eml") if outbox.is_dir() else ():
        for part in email.message_from_bytes(path.read_bytes()).walk():
            if part.get_content_type() == "text/html":
                html.append(len(part.get_payload(decode=True)))
    return {
        "items": statistics.fmean(
            thaw_compact(d.content, records_for([d.content], store.frozen_items)).item_count
            for d in sent
        )
        if sent
        else 0,
        "html": statistics.fmean(html) if html else 0.0,
    }


def _cpu() -> float:
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _peak(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB
