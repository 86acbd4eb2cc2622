"""A year of papers in a store, built in minutes: the world of the year figures (bench only).

A real ingest of a year at 2,000 papers a day analyses 730,000 abstracts (some 6 CPU-s a
day here: over half an hour of CPU, an hour and more on a shared machine). So:

- the first `patterns` days (7) are Hugging Face daily-papers answers (the JSON of
  `https://huggingface.co/api/daily_papers?date=...`, 2,000 items: arXiv ids, authors,
  upvotes, links) ingested by the real `pipeline.ingest`, analysis and kept terms
  included;
- every later day is one of those days moved to its own date (`daily_json(..., like=)`:
  the same items with the day in their titles, arXiv ids and dates), and its rows are
  written straight into the store: each pattern paper's row, sources and kept terms,
  with the moved fields replaced, in one transaction a day (then its kept terms through
  `Store.keep_paper_terms`, which makes their postings, as ingest). The moved title is analysed
  again (its date is part of it); the abstract's features are the pattern's (the same
  text), so the blob is what `rank.terms.encode` makes of the moved paper.

The rows are those the real ingest would write for the moved answers, and `check`
proves it: it builds a small world both ways (moved rows, and the real ingest of every
day's moved answer) and compares every table of the two stores row by row (rowids
included). Run it after changing the store or ingest:

    python bench/_year_world.py --check
    python bench/_year_world.py --build DIR [--days 365] [--per-day 2000]
    python bench/_year_world.py --publish DIR [--days 365] [--per-day 2000]

`--publish` builds (or reuses) the world under DIR and measures one publish of it from
scratch into a temporary directory: CPU seconds (worker processes included), wall
seconds, peak RSS, files and bytes written, and the search index's bytes.

Writing rows past the store is what this module alone does, and only to build a bench
world: shipped code reaches SQL through `digest.store` only.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import _day_data as world  # noqa: E402
import numpy as np  # noqa: E402

from digest import pipeline  # noqa: E402
from digest.config import load_config  # noqa: E402
from digest.model import Paper  # noqa: E402
from digest.store import Store  # noqa: E402
from digest.text import fold_title  # noqa: E402

#: The year ends the day before bench/day.py's measured day, which is then the new day.
LAST_DAY = world.DAY - timedelta(days=1)
PATTERNS = 7  #: days ingested for real; the others are moved copies of them
INGEST_HOUR = world.INGEST_AT
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_ORGS = ["Google DeepMind", "Meta AI", "Tsinghua University", "Microsoft Research", "NVIDIA"]


def year_days(days: int, last: date = LAST_DAY) -> list[date]:
    """`days` consecutive days ending on `last`, oldest first."""
    return [last - timedelta(days=days - 1 - k) for k in range(days)]


def arxiv_number(day: date, i: int, per_day: int) -> str:
    """A well-formed arXiv id, unique per (day, i) for per_day <= 3,225."""
    assert per_day <= 3_225, "arXiv numbers have 5 digits"
    return f"{day:%y%m}.{(day.day - 1) * per_day + i:05d}"


def daily_json(seeds: list[Paper], day: date, n: int, like: date | None = None) -> bytes:
    """A daily-papers answer for `day` with `n` items made from the seed papers; `like`
    another day: that day's items moved to `day` (the same texts and numbers, `day` in
    titles, ids and dates): what the year's later days are."""
    pattern = like or day
    rng = random.Random(pattern.toordinal())
    pool = [s for p in seeds for s in _SENTENCE.split(p.abstract) if len(s) > 40]
    items = []
    for i in range(n):
        seed = seeds[(pattern.toordinal() * 31 + i * 7) % len(seeds)]
        own = _SENTENCE.split(seed.abstract)
        abstract = own[: rng.randint(2, max(2, len(own)))] + rng.sample(pool, rng.randint(1, 3))
        published = day - timedelta(days=rng.choice((0, 0, 1, 1, 2, 5)))
        paper: dict[str, object] = {
            "id": arxiv_number(day, i, n),
            "title": f"{seed.title} ({day.isoformat()} #{i})",
            "summary": " ".join(abstract),
            "authors": [
                {"name": f"Author {rng.randint(1, 5000)}"} for _ in range(rng.randint(1, 9))
            ],
            "publishedAt": f"{published.isoformat()}T17:59:01.000Z",
            "upvotes": int(rng.paretovariate(1.2)) - 1,
            "submittedOnDailyAt": f"{day.isoformat()}T01:23:45.000Z",
        }
        if rng.random() < 0.2:
            paper["organization"] = {"name": "org", "fullname": rng.choice(_ORGS)}
        if rng.random() < 0.3:
            paper["githubRepo"] = f"https://github.com/example/repo-{rng.randint(1, 10**6)}"
        items.append({"paper": paper, "numComments": rng.randint(0, 4)})
    return json.dumps(items).encode()


def capture_path(work: Path, day: date) -> Path:
    return work / "captures" / f"daily_papers-{day.isoformat()}.json"


def write_project(work: Path) -> Path:
    """config.toml: the default's, with the daily answers under captures/ as its source."""
    text = (ROOT / "config.toml").read_text()
    old = 'kind = "listing"                 # Hugging Face papers listing captures (text)\n'
    old += 'path = "seeds/*.txt"'
    assert old in text, "config.toml changed: its seeds source was not found"
    text = text.replace(old, 'kind = "hf_daily"\npath = "captures/*.json"')
    (work / "config.toml").write_text(text)
    (work / "captures").mkdir(exist_ok=True)
    return work / "config.toml"


def ingest_day(work: Path, store: Store, day: date, data: bytes) -> None:
    """The real ingest of one day's answer, at INGEST_HOUR of that day."""
    config = load_config(work / "config.toml", required=True)
    path = capture_path(work, day)
    path.write_bytes(data)
    report = pipeline.ingest(config, store, [str(path)], now=world.at(day, INGEST_HOUR))
    assert report.counts.new == len(json.loads(data)) and not report.errors, report.summary()


def build(
    work: Path, days: int, per_day: int, *, patterns: int = PATTERNS, real: bool = False
) -> tuple[Path, float]:
    """The project and store of a `days` x `per_day` world in `work` (see the module
    docstring); `real`: every day through the real ingest (what `check` compares with).
    Returns (store path, seconds it took)."""
    start = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    config = load_config(write_project(work), required=True)
    seeds = world.seed_papers()
    every = year_days(days)
    with Store(config.store_path) as store:
        for k, day in enumerate(every):
            like = every[k % patterns]
            if real or k < patterns:
                ingest_day(work, store, day, daily_json(seeds, day, per_day, like=like))
    if not real and days > patterns:
        _move_days(config.store_path, every, patterns, per_day)
    return config.store_path, time.perf_counter() - start


def _move_days(db_path: Path, every: list[date], patterns: int, per_day: int) -> None:
    """Write days `patterns`.. of `every` as moved copies of the first `patterns` days."""
    from digest.rank.analyzer import analyzer_for

    analyzer = analyzer_for(None)  # the year world's config has no synonyms
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    store = Store(db_path)
    try:
        columns = [r["name"] for r in db.execute("PRAGMA table_info(papers)")]
        marks = ", ".join("?" * len(columns))
        insert = f"INSERT INTO papers ({', '.join(columns)}) VALUES ({marks})"
        templates = {day: _pattern(db, day) for day in every[:patterns]}
        for k in range(patterns, len(every)):
            day, like = every[k], every[k % patterns]
            rows, sources, blobs = [], [], []
            for i, (row, paper_sources, key, blob) in enumerate(templates[like]):
                moved = _moved(row, like, day, arxiv_number(day, i, per_day))
                rows.append(tuple(moved[c] for c in columns))
                sources += [(moved["id"], s) for s in paper_sources]
                blobs.append((moved["id"], key, _moved_blob(moved, blob, analyzer)))
            with db:  # one transaction a day for the papers, as ingest's
                db.executemany(insert, rows)
                db.executemany(
                    "INSERT INTO paper_sources (paper_id, source) VALUES (?, ?)", sources
                )
            # and one for their terms and postings, as ingest's (the store makes them)
            by_key: dict[str, list[tuple[str, bytes]]] = {}
            for pid, key, blob in blobs:
                by_key.setdefault(key, []).append((pid, blob))
            for key, kept in by_key.items():
                store.keep_paper_terms(kept, key)
    finally:
        db.close()
        store.close()


def _pattern(
    db: sqlite3.Connection, day: date
) -> list[tuple[dict[str, Any], list[str], str, bytes]]:
    """A pattern day's rows in arrival order (the answer's), each with its sources and its
    kept terms (key and blob)."""
    rows = db.execute(
        "SELECT * FROM papers WHERE first_seen >= ? AND first_seen < ? ORDER BY rowid",
        (day.isoformat(), (day + timedelta(days=1)).isoformat()),
    ).fetchall()
    out = []
    for row in rows:
        pid = row["id"]
        got = db.execute("SELECT source FROM paper_sources WHERE paper_id = ?", (pid,))
        sources = sorted(r[0] for r in got)
        key, blob = db.execute(
            "SELECT key, data FROM paper_terms WHERE paper_id = ?", (pid,)
        ).fetchone()
        out.append((dict(row), sources, key, bytes(blob)))
    return out


@functools.lru_cache(maxsize=1 << 20)
def _hash(feature: str) -> int:
    from digest.rank import packed

    return packed.feature_hash(feature)


def _moved_blob(moved: dict[str, Any], blob: bytes, analyzer: Any) -> bytes:
    """The kept terms of a moved paper: its title analysed anew, its abstract's part (the
    same text) copied from the pattern's packed blob (`rank.packed`'s layout); what
    `rank.terms.encode` makes of the moved paper (`check` compares the two)."""
    from digest.rank import packed, terms

    paper = Paper(moved["id"], moved["title"], moved["abstract"])
    title, title_words = analyzer.features(paper.title)
    t = Counter(title)
    hashes = [_hash(f) for f in t]
    if not packed.is_packed(blob) or len(set(hashes)) != len(hashes):
        return terms.encode(paper, terms.analyze(paper, analyzer))  # the rare slow way
    head = packed._HEAD
    _, _, _, abstract_words, nt, na, width = head.unpack_from(blob)
    start = head.size + 8 * nt
    abstract_hashes = blob[start : start + 8 * na]
    at = head.size + 8 * (nt + na) + width * nt
    abstract_counts = np.frombuffer(blob, dtype=f"<u{width}", count=na, offset=at)
    counts = [*t.values(), *abstract_counts.tolist()]
    top = max(counts, default=0)
    wide = 1 if top < 2**8 else 2 if top < 2**16 else 4
    text = packed.text_hash(paper)
    out = head.pack(packed.MAGIC, text, title_words, abstract_words, len(t), na, wide)
    out += np.asarray(hashes, dtype="<u8").tobytes() + abstract_hashes
    tail = np.asarray(counts, dtype=f"<u{wide}").tobytes()
    return out + tail + b"\0" * (-len(tail) % 8)


def _moved(row: dict[str, Any], like: date, day: date, arxiv: str) -> dict[str, Any]:
    """A pattern row moved from `like` to `day` under its new arXiv id: the row the real
    ingest makes of the moved answer's item."""
    shift = day - like
    out = dict(row)
    out["id"] = out["arxiv_id"] = arxiv
    out["url"] = row["url"].replace(row["arxiv_id"], arxiv)
    out["pdf_url"] = row["pdf_url"].replace(row["arxiv_id"], arxiv)
    out["title"] = row["title"].replace(f"({like.isoformat()} #", f"({day.isoformat()} #")
    out["folded_title"] = fold_title(out["title"])
    if row["published"]:
        out["published"] = (date.fromisoformat(row["published"]) + shift).isoformat()
    for name in ("first_seen", "last_seen", "arrived_at"):
        out[name] = (datetime.fromisoformat(row[name]) + shift).isoformat()
    return out


def dump(db_path: Path) -> dict[str, list[tuple]]:
    """Every table of a store, every row (its rowid first where it has one), in order."""
    db = sqlite3.connect(db_path)
    try:
        out = {}
        tables = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        for name, sql in tables.fetchall():
            rowid = "" if "WITHOUT ROWID" in sql.upper() else "rowid, "
            out[name] = sorted(db.execute(f"SELECT {rowid}* FROM {name}").fetchall(), key=repr)
        return out
    finally:
        db.close()


def check(days: int = 9, per_day: int = 40, patterns: int = 3) -> list[str]:
    """Build a small world both ways (moved rows; the real ingest of every moved answer)
    and compare their stores; the differences (none when the moved rows are right)."""
    with tempfile.TemporaryDirectory(prefix="year-world-check-") as tmp:
        moved, _ = build(Path(tmp) / "moved", days, per_day, patterns=patterns)
        real, _ = build(Path(tmp) / "real", days, per_day, patterns=patterns, real=True)
        a, b = dump(moved), dump(real)
    problems = []
    for table in sorted((set(a) | set(b)) - {"installation"}):  # a random id per store
        rows_a, rows_b = a.get(table, []), b.get(table, [])
        if rows_a != rows_b:
            extra = [r for r in rows_a if r not in rows_b][:1]
            missing = [r for r in rows_b if r not in rows_a][:1]
            problems.append(
                f"{table}: {len(rows_a)} rows moved, {len(rows_b)} ingested; "
                f"first moved row not ingested: {str(extra)[:300]}; "
                f"first ingested row not moved: {str(missing)[:300]}"
            )
    if sum(len(rows) for rows in b.values()) < days * per_day * 3:
        problems.append("the real ingest wrote fewer rows than papers x 3 tables")
    return problems


def kept_world(home: Path, days: int, per_day: int) -> Path:
    """The world of this size under `home` (built there once: `built.json` marks it
    done), for copies: `home/year-DAYSxPER_DAY`."""
    where = home / f"year-{days}x{per_day}"
    if not (where / "built.json").exists():
        shutil.rmtree(where, ignore_errors=True)
        _, seconds = build(where, days, per_day)
        papers = days * per_day
        (where / "built.json").write_text(json.dumps({"papers": papers, "seconds": seconds}))
    return where


def bring_up_to_date(where: Path) -> str:
    """`_bring_up_to_date` in a new process (its memory is not the publish's): a line."""
    args = [sys.executable, __file__, "--upgrade", str(where)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


def _bring_up_to_date(where: Path) -> str:
    """Open the world's store (one built by an earlier version is upgraded in place) and
    make the postings it lacks (`Store.backfill_postings`, as the first ingest after an
    upgrade does): a line saying what that cost."""
    config = load_config(where / "config.toml", required=True)
    start, wall = _cpu(), time.perf_counter()
    papers = 0
    with Store(config.store_path) as store:
        while got := store.backfill_postings():
            papers += got
    if not papers:
        return f"world: {where} is up to date"
    used, wall = _cpu() - start, time.perf_counter() - wall
    return (
        f"world: {where} upgraded: the postings or search rows of {papers:,} papers backfilled in "
        f"{used:.1f} CPU-s ({wall:.0f} s wall), once"
    )


def _cpu() -> float:
    """CPU seconds of this process and of its reaped children (the publish's workers)."""
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _publish(where: Path, site: Path, now: datetime) -> dict[str, float]:
    """One `pipeline.publish` of the world in `where` into `site`: its figures. The
    allocator tuned first, as the `digest` command does (`digest.memory`)."""
    from digest.memory import keep_freed_memory

    keep_freed_memory()
    config = load_config(where / "config.toml", required=True)
    with Store(config.store_path) as store:
        start, wall = _cpu(), time.perf_counter()
        report = pipeline.publish(config, store, now, out_dir=site)
        used, wall = _cpu() - start, time.perf_counter() - wall
    return {
        "cpu": used,
        "wall": wall,
        "written": report.written,
        "total": report.total,
        "read_days": report.read_days,
        "ranked_days": report.ranked_days,
        "days": report.days,
        "papers": report.papers,
    }


def _publish_child(where: Path, site: Path, now: datetime) -> dict[str, float]:
    """`_publish` in a new process, as a `digest publish` run would be: `process_cpu` is
    all of its CPU (start-up and imports included), `cpu` the publish's own."""
    args = [sys.executable, __file__, "--one", str(where), str(site), now.isoformat()]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def _one(where: Path, site: Path, now: datetime) -> dict[str, float]:
    """The child's side of `_publish_child`."""
    figures = _publish(where, site, now)
    figures["process_cpu"] = _cpu()
    return figures


def _site_figures(site: Path) -> str:
    files = [p for p in site.rglob("*") if p.is_file()]
    search = [p for p in files if p.name == "search-index.js" or "search" in p.parent.parts]
    size = sum(p.stat().st_size for p in files) / 1e6
    search_size = sum(p.stat().st_size for p in search) / 1e6
    return (
        f"site: {len(files):,} files, {size:.0f} MB; search index {search_size:.0f} MB in "
        f"{len(search)} files"
    )


def _line(label: str, runs: list[dict[str, float]]) -> str:
    cpu = [r["cpu"] for r in runs]
    wall = statistics.median(r["wall"] for r in runs)
    last = runs[-1]
    return (
        f"{label:<16} {statistics.median(cpu):7.2f} CPU-s (workers included; min "
        f"{min(cpu):.2f}, median of {len(runs)}), wall {wall:.1f}"
        f" s; {int(last['written']):,}/{int(last['total']):,} files written, "
        f"{int(last['read_days'])} days read, {int(last['ranked_days'])} ranked"
    )


def measure_year(where: Path, work: Path, runs: int = 1, new_day_runs: int = 3) -> list[str]:
    """The year's publish figures (issue 10, item 8), each publish in this process:

    - from scratch (`runs` times, into a new directory each);
    - again with nothing changed (no file may be written);
    - one new day: a copy of the world gets the next day's 2,000 papers through the real
      ingest (unmeasured), then publishes into a copy of the year's site (`new_day_runs`
      times, each on a fresh copy of the site; the copies stay until the end, as every
      site does: a deletion would make the next run's files dearer, bench/_later.py).

    `work` holds the sites and the world's copy (the store is copied once, some GB). The
    last two run in a new process each (`_publish_child`), so their figures include what
    a `digest publish` pays for its imports and a cold ranker."""
    now = world.at(LAST_DAY, world.PUBLISH_AT)
    scratch = [_publish(where, work / f"site-{n}", now) for n in range(runs)]
    site = work / f"site-{runs - 1}"
    lines = [
        f"world: {where} ({scratch[-1]['days']:.0f} days, {scratch[-1]['papers']:,.0f} papers)",
        _line("from scratch", scratch),
        f"{'':17}peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
        f" (workers {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f}); "
        + _site_figures(site),
    ]
    unchanged = [_publish_child(where, site, now) for _ in range(3)]
    lines.append(_line("nothing changed", unchanged))
    copy = work / "world"
    copy.mkdir()
    shutil.copy(where / "config.toml", copy / "config.toml")
    shutil.copytree(where / "captures", copy / "captures")
    shutil.copytree(where / "var", copy / "var")
    day = LAST_DAY + timedelta(days=1)
    config = load_config(copy / "config.toml", required=True)
    with Store(config.store_path) as store:
        per_day = store.papers_between(LAST_DAY, day)
        ingest_day(copy, store, day, daily_json(world.seed_papers(), day, len(per_day)))
    later = world.at(day, world.PUBLISH_AT)
    new_day = []
    for n in range(new_day_runs):
        again = work / f"new-day-{n}"
        shutil.copytree(site, again, symlinks=True)
        new_day.append(_publish_child(copy, again, later))  # kept: bench/_later.py
    lines.append(_line("one new day", new_day))
    processes = [r["process_cpu"] for r in unchanged + new_day]
    lines.append(
        f"{'':17}those two in a new process each (as `digest publish`): "
        f"{min(processes):.2f}-{max(processes):.2f} CPU-s with start-up and imports"
    )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare moved rows with a real ingest")
    ap.add_argument("--build", type=Path, help="build (or reuse) the world under this directory")
    ap.add_argument("--publish", type=Path, help="measure a publish of the world under DIR")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--per-day", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=1, help="publishes from scratch (--publish)")
    ap.add_argument("--work", type=Path, help="where --publish puts its sites and copy")
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--upgrade", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.check:
        problems = check()
        print("\n".join(problems) or "moved rows = the real ingest's: every table, every row")
        return 1 if problems else 0
    if args.build:
        where = kept_world(args.build, args.days, args.per_day)
        print(f"{where}: {(where / 'built.json').read_text()}")
        return 0
    if args.upgrade:
        print(_bring_up_to_date(args.upgrade))
        return 0
    if args.one:
        where, site, now = args.one
        print(json.dumps(_one(Path(where), Path(site), datetime.fromisoformat(now))))
        return 0
    if args.publish:
        where = kept_world(args.publish, args.days, args.per_day)
        print(bring_up_to_date(where), flush=True)
        with tempfile.TemporaryDirectory(prefix="year-publish-", dir=args.work) as tmp:
            print("\n".join(measure_year(where, Path(tmp), args.runs)), flush=True)
        return 0
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
