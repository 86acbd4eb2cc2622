"""The synthetic world of bench/day.py: days of papers, readers, a project directory.

Papers: each day is a text capture in the seeds' own listing format (so `digest ingest`
parses it as it would a real page), 2,000 entries built from the 331 seed papers: the
title of a seed paper made distinct by day and number, an abstract of some of its
sentences followed by a few sentences of other papers, and varied authors and upvotes.

Readers (seeded, so every run sees the same world), by when they joined:

    regular  joined before the first day; a digest on every earlier day (60 %)
    weekly   joined before the first day, weekly: their first digest was 3 days ago (8 %)
    joined   imported on the 2nd or 3rd earlier day: 1-2 digests so far (24 %)
    paused   a digest on the first day, then unsubscribed, back today (6 %)
    new      subscribed today, each at their own time; one in five weekly (2 %)

with 1-4 keywords a profile from ~40 common topics (some quoted phrases, weights,
exclusions), a second profile for one in five, and time zones from UTC-7 to UTC+5:30
with send times from 06:00 to 09:30 local, so that at the send run (16:00 UTC) almost
everyone's time has come (Los Angeles at 09:30 has not: they are not due).
"""

from __future__ import annotations

import random
import re
from calendar import month_abbr
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from digest.model import Paper
from digest.sources.listing import parse
from digest.text import fold_title

ROOT = Path(__file__).resolve().parents[1]
#: The measured day; the store holds HISTORY earlier days before it.
DAY = date(2025, 10, 16)
HISTORY = 3
INGEST_AT, SEND_AT, PUBLISH_AT = 5, 16, 17  #: hours (UTC) of each stage of a day
TOPICS = [
    "LoRA", "parameter-efficient fine-tuning", "quantization", "distillation", "pruning",
    "mixture of experts", "RLHF", "reinforcement learning", "reward model", "DPO",
    "chain-of-thought", "reasoning", "agents", "tool use", "RAG", "retrieval",
    "speech recognition", "TTS", "video generation", "video diffusion", "text-to-image",
    "diffusion", "3D reconstruction", "Gaussian splatting", "NeRF", "autonomous driving",
    "robotics", "vision-language models", "multimodal", "in-context learning",
    "long context", "state space models", "graph neural networks", "federated learning",
    "continual learning", "unlearning", "object detection", "segmentation",
    "code generation", "machine translation", "hallucination", "time series",
]  # fmt: skip
EXCLUSIONS = ["survey", "benchmark", "medical", "3D", "video"]
ZONES = [
    ("UTC", 2), ("Europe/London", 2), ("Europe/Berlin", 3), ("Europe/Paris", 2),
    ("Europe/Kyiv", 1), ("Asia/Kolkata", 2), ("America/New_York", 3),
    ("America/Chicago", 1), ("America/Sao_Paulo", 1), ("America/Los_Angeles", 2),
]  # fmt: skip
SEND_TIMES = ["06:00", "06:30", "07:00", "07:00", "07:30", "08:00", "09:00", "09:30"]
COHORTS = [("regular", 60), ("weekly", 8), ("joined", 24), ("paused", 6), ("new", 2)]
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def at(day: date, hour: float) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour)


def days() -> list[date]:
    """The earlier days, oldest first, then the measured day."""
    return [DAY - timedelta(days=HISTORY - k) for k in range(HISTORY + 1)]


def seed_papers() -> list[Paper]:
    """The distinct papers of the seed captures (331)."""
    distinct: dict[str, Paper] = {}
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        found = parse(path.read_bytes(), origin="", source="", captured=DAY, warn=print)
        for paper in found:
            distinct.setdefault(fold_title(paper.title), paper)
    return list(distinct.values())


def _stamp(d: date) -> str:
    return f"{month_abbr[d.month]} {d.day}"


def capture(seeds: list[Paper], day: date, n: int) -> str:
    """A listing capture of `day` with `n` distinct papers (deterministic per day)."""
    rng = random.Random(day.toordinal())
    pool = [s for p in seeds for s in _SENTENCE.split(p.abstract) if len(s) > 40]
    lines = ["Daily Papers", "byAK and the research community", _stamp(day)]
    for i in range(n):
        seed = seeds[(day.toordinal() * 31 + i * 7) % len(seeds)]
        own = _SENTENCE.split(seed.abstract)
        abstract = own[: rng.randint(2, max(2, len(own)))] + rng.sample(pool, rng.randint(1, 3))
        published = day - timedelta(days=rng.choice((0, 0, 1, 1, 2, 5)))
        meta = f"• {rng.randint(1, 40)} authors" if rng.random() < 0.8 else "Meta AI"
        up = int(rng.paretovariate(1.2)) - 1
        lines += [
            f"{seed.title} ({day.isoformat()} #{i})",
            " ".join(abstract),
            meta,
            "·",
            f"{_stamp(published)} {up}" if up else _stamp(published),
        ]
    return "\n\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Reader:
    email: str
    profiles: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  #: name, kws, excl
    timezone: str
    send_at: str
    frequency: str
    cohort: str
    joined: datetime


def _keywords(rng: random.Random) -> tuple[str, ...]:
    out = []
    for term in rng.sample(TOPICS, rng.choice((1, 2, 2, 3, 3, 4))):
        if " " in term and rng.random() < 0.3:
            term = f'"{term}"'
        if rng.random() < 0.15:
            term += f"^{rng.choice((2, 3, 0.5))}"
        out.append(term)
    return tuple(out)


def readers(n: int, seed: int = 10) -> list[Reader]:
    """`n` readers (deterministic for a seed); see the module docstring."""
    rng = random.Random(seed)
    zones = [z for z, w in ZONES for _ in range(w)]
    first = days()[0]
    joined_at = {
        "regular": at(first, -12),
        "weekly": at(first, -12),
        "paused": at(first, -12),
    }
    out = []
    for i in range(n):
        (cohort,) = rng.choices([c for c, _ in COHORTS], [w for _, w in COHORTS])
        if cohort == "joined":  # imported lists: one moment for each
            joined = at(first + timedelta(days=rng.choice((1, 2))), -6)
        elif cohort == "new":  # one at a time, during the day
            joined = at(DAY, INGEST_AT + 1 + rng.random() * (SEND_AT - INGEST_AT - 2))
        else:
            joined = joined_at[cohort]
        profiles = [("papers", _keywords(rng), ())]
        if rng.random() < 0.2:
            excl = (rng.choice(EXCLUSIONS),) if rng.random() < 0.5 else ()
            profiles.append(("more", _keywords(rng), excl))
        if rng.random() < 0.15:
            name, kws, _ = profiles[0]
            profiles[0] = (name, kws, (rng.choice(EXCLUSIONS),))
        weekly = cohort == "weekly" or (cohort == "new" and rng.random() < 0.2)
        out.append(
            Reader(
                email=f"reader{i}@example.org",
                profiles=tuple(profiles),
                timezone=rng.choice(zones),
                send_at=rng.choice(SEND_TIMES),
                frequency="weekly" if weekly else "daily",
                cohort=cohort,
                joined=joined,
            )
        )
    return out


def write_project(work: Path) -> Path:
    """A project in `work`: config.toml (the default's, reading the day captures under
    captures/, the outbox under var/outbox) and the captures of every day."""
    text = (ROOT / "config.toml").read_text()
    for old, new in (('path = "seeds/*.txt"', 'path = "captures/*.txt"'),
                     ("captured = 2025-12-31", f"captured = {DAY.isoformat()}")):  # fmt: skip
        assert old in text, f"config.toml changed: {old!r} not found"
        text = text.replace(old, new)
    (work / "config.toml").write_text(text)
    return work / "config.toml"


def capture_path(work: Path, day: date) -> Path:
    return work / "captures" / f"{day.isoformat()}.txt"
