"""`make bench`: a whole day without network, for N readers (issue 10, items 5 and 8).

The store already holds 3 earlier days of 2,000 papers, and most readers got digests on
them: the earlier days went through the same ingest, send and publish, so readers have
sent-ledgers and last deliveries with different windows (who joined when, keywords, time
zones: bench/_day_data.py). Then the measured day, each phase in a fresh child process
(its CPU and peak RSS are its own, worker processes included):

    ingest       `pipeline.ingest` of the day's capture: 2,000 new papers
    send-outbox  `pipeline.send_due` at 16:00 UTC through the outbox backend (.eml files)
    send-smtp    the same send from the same store to a minimal SMTP sink on 127.0.0.1
                 (bench/send.py's, in another process: its CPU is not counted)
    publish      `pipeline.publish` of the archive (the earlier days are published already)
    naive        once per N, on a sample of readers, one at a time: `rank.rank(the day's
                 papers, [their profiles])`, then `EmailRenderer.render_whole`; its CPU
                 per reader x N, against the real send's CPU, is the naive ratio

A phase still running after --budget seconds is stopped; its row shows what it did until
then (digests per CPU-second so far, marked *) and the notes say "stopped after X s"; an N
whose first run was stopped is not run again. The world is built once per N, and every
run starts from a copy of it. Medians of --runs runs (1 from 100,000 readers on); the
machine is shared, so the figures are noisy. Every run's copies stay on disk until the
bench ends (a deletion makes the next run's files dearer: bench/_later.py): at 20,000
readers about 1.3 GB a run (two copies of the store, 18,000 .eml files) and 1 GB a
--baseline run, so some 7 GB under $TMPDIR for --runs 3 --baseline; five times that a
run at 100,000.

`--baseline DIR` sends the same day with another checkout's code too (`git worktree add
DIR REV`), from a world its own code built (its schema, its ingest), right after each run
of this code, and prints both rates and their ratio: this shared machine's speed moves
from day to day by more than most changes (session 12's code measured 1,093 digests a
CPU-second at 20,000 readers then, 616-647 on a later day), the ratio much less.

`--year` measures the archive instead (issue 10, item 8; bench/_year_world.py): a year of
--papers a day published from scratch, again with nothing changed, and after one new day
through the real ingest; the year's world is built once under --world (some 9 GB and
a quarter of an hour for 365 x 2,000; `--year-days` for a smaller one) and reused. A
world kept by an earlier version is brought up to date first, in place (the schema, and
the postings backfill that the first ingest after an upgrade does: its CPU is printed).
The sites it publishes and the world's copy for the new day (as large as the world's
store) go under --year-work (default: the temporary directory, $TMPDIR), never under
--world.

usage: python bench/day.py [--readers 1000,10000] [--runs 3] [--budget 300] [--sample 30]
                           [--papers 2000] [--quick] [--profile [PHASE]] [--world DIR]
                           [--baseline DIR]
       python bench/day.py --year [--year-days 365] [--papers 2000] [--runs 1] [--world DIR]
                           [--year-work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import _baseline as baseline  # noqa: E402
import _day_data as world  # noqa: E402
from _day_phases import PHASES, prepare, run_phase, startup  # noqa: E402
from _later import Later  # noqa: E402
from send import start_sink  # noqa: E402  (bench/send.py's SMTP sink)

from digest.store import Store  # noqa: E402

# -- the parent: runs, medians, the table ----------------------------------------------


#: --quick forks each phase from this process (imports done once) instead of starting a
#: new interpreter per phase: a smoke run's phases take less time than Python's imports.
#: Its peak RSS then counts what the parent held at the fork; full runs use new processes.
FORK = False


def child(*args: str) -> dict[str, Any]:
    """Run this script with `args` in another process; the JSON its last line prints."""
    if FORK:
        return _forked(list(args))
    return baseline.script_json(Path(__file__), *args)


def _forked(args: list[str]) -> dict[str, Any]:
    sys.stdout.flush()
    sys.stderr.flush()
    read, write = os.pipe()
    with tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: main() with these arguments, stdout into the pipe
            code = 1
            try:
                os.close(read)
                os.dup2(write, 1)
                os.dup2(err.fileno(), 2)
                sys.argv = [__file__, *args]
                code = main()
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(write)
        with os.fdopen(read) as pipe:
            out = pipe.read()
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError(f"phase {args} failed:\n{err.read().decode(errors='replace')}")
    return json.loads(out.strip().splitlines()[-1])


def one_run(
    prepared: Path, work: Path, args: argparse.Namespace, naive: bool, later: Later
) -> dict[str, Any]:
    """The measured day once, from a copy of the prepared world; its copies go to
    `later` (deleted when the bench ends, not before the next run: bench/_later.py)."""
    smtp_work = work.with_name(work.name + "-smtp")
    shutil.copytree(prepared, work)
    db = work / "var" / "digest.sqlite3"
    Store(db).close()  # a world a --world kept from an older schema is upgraded here, untimed
    common = ["--budget", str(args.budget), "--sample", str(args.sample)]
    got: dict[str, Any] = {"sizes": [db.stat().st_size]}
    got["ingest"] = child("--phase", "ingest", str(work), *common)
    got["sizes"].append(db.stat().st_size)
    shutil.copytree(work, smtp_work)

    def profile(phase: str) -> list[str]:
        return ["--profile", phase] if args.profile == phase else []

    got["send-outbox"] = child(
        "--phase", "send-outbox", str(work), *common, *profile("send-outbox")
    )
    got["sizes"].append(db.stat().st_size)
    sink, port = start_sink()
    assert sink.stdin is not None and sink.stdout is not None
    got["send-smtp"] = child(
        "--phase", "send-smtp", str(smtp_work), *common, "--port", str(port), *profile("send-smtp")
    )
    sink.stdin.close()
    got["send-smtp"]["received"] = int(sink.stdout.readline())
    sink.wait(timeout=30)
    got["publish"] = child("--phase", "publish", str(work), *common, *profile("publish"))
    if naive:
        got["naive"] = child("--phase", "naive", str(work), *common)
        got["rank"] = child("--phase", "rank", str(work), *common)
        got["startup"] = startup(work, repeat=1 if args.quick else 5)
    later.put(work)
    later.put(smtp_work)
    return got


COLUMNS = [  # (header line 1, header line 2, width)
    ("readers", "", 7), ("ingest", "cpu/wall s", 11), ("send-outbox", "cpu/wall s", 13),
    ("send-smtp", "cpu/wall s", 13), ("publish", "cpu/wall s", 11), ("peak RSS", "MiB", 8),
    ("store +MB", "day", 9), ("KB per", "delivery", 8), ("digests/CPU-s", "outbox", 13),
    ("", "smtp", 6), ("mean digest", "items", 11), ("", "HTML KB", 7),
    ("naive x N", "CPU s", 9), ("naive/send", "CPU", 10),
]  # fmt: skip


def table_line(cells: list[str]) -> str:
    return "  ".join(c.rjust(w) for c, (_, _, w) in zip(cells, COLUMNS, strict=True))


def row(n: int, runs: list[dict[str, Any]], naive: dict[str, Any]) -> tuple[str, list[str]]:
    """The table row for N (medians over the runs) and the notes printed under it."""

    def med(phase: str, key: str) -> float:
        return statistics.median(r[phase].get(key, 0) for r in runs)

    def star(phase: str) -> str:
        return "*" if any(r[phase]["stopped"] for r in runs) else ""

    notes, cells = [], [f"{n:,}"]
    for phase in PHASES:
        cells.append(f"{med(phase, 'cpu'):.1f}/{med(phase, 'wall'):.1f}{star(phase)}")
        if star(phase):
            done = ""
            if "send" in phase:
                done = (
                    f": {med(phase, 'rank_calls'):.0f} rank() calls had ranked "
                    f"{med(phase, 'profiles_ranked'):.0f} profiles"
                    f" ({med(phase, 'profiles_ranked') / med(phase, 'cpu'):.1f} per CPU-s),"
                    f" {med(phase, 'sent'):.0f} digests out"
                )
            notes.append(f"* {phase} stopped after {med(phase, 'wall'):.0f} s (--budget){done}")
    cells.append(f"{max(max(r[p]['rss'], r[p]['workers_rss']) for r in runs for p in PHASES):.0f}")
    grown = [(s[2] - s[0], (s[2] - s[1]) / max(1, r["send-outbox"].get("claimed", 0)))
             for r in runs for s in [r["sizes"]]]  # fmt: skip
    cells += [f"{statistics.median(g[0] for g in grown) / 1e6:.1f}"]
    cells += [f"{statistics.median(g[1] for g in grown) / 1e3:.1f}"]
    for phase in ("send-outbox", "send-smtp"):
        rate = statistics.median(r[phase]["sent"] / r[phase]["cpu"] for r in runs)
        cells.append(f"{rate:.1f}{star(phase)}")
    cells += [f"{med('send-outbox', 'items'):.1f}", f"{med('send-outbox', 'html') / 1e3:.1f}"]
    naive_cpu = naive.get("per_reader", 0.0) * n
    cells += [f"{naive_cpu:.0f}", f"{naive_cpu / med('send-outbox', 'cpu'):.1f}"]
    out, smtp = runs[-1]["send-outbox"], runs[-1]["send-smtp"]
    notes.append(
        f"send: {out.get('due', '?')} due, {out.get('claimed', '?')} claimed, {out['sent']} "
        f"sent to the outbox; {smtp['sent']} sent by SMTP, {smtp['received']} received; "
        f"{out['rank_calls']} rank() calls (one a group of readers sharing a window) for "
        f"{out['profiles_ranked']} profiles"
    )
    notes.append(
        f"naive: {naive.get('readers', 0)} readers, {naive.get('per_reader', 0):.2f} CPU s each"
        + (" (stopped by --budget)" if naive.get("stopped") else "")
        + "; peak RSS MiB: "
        + ", ".join(f"{p} {max(r[p]['rss'] for r in runs):.0f}" for p in PHASES)
        + f" (publish workers {max(r['publish']['workers_rss'] for r in runs):.0f})"
    )
    if len(runs) > 1:
        notes.append("send-outbox CPU s by run: " + ", ".join(
            f"{r['send-outbox']['cpu']:.1f}" for r in runs))  # fmt: skip
    return table_line(cells), notes


def year(args: argparse.Namespace) -> int:
    """`--year`: bench/_year_world.py's publish figures of a kept year world."""
    import _year_world

    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start, "
        f"Python {platform.python_version()}; the archive of {args.year_days} days x "
        f"{args.papers:,} papers; CPU includes worker processes; the machine is shared: "
        "figures are noisy",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-year-") as tmp:
        home = args.world or Path(tmp)
        where = _year_world.kept_world(home, args.year_days, args.papers)
        print(_year_world.bring_up_to_date(where), flush=True)
        # Not under the world's directory: the sites and the store's copy are some GB.
        if args.year_work is not None:
            args.year_work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="bench-year-sites-", dir=args.year_work) as sites:
            for line in _year_world.measure_year(where, Path(sites), args.runs):
                print(line, flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readers", default="1000,10000", help="comma-separated Ns")
    ap.add_argument("--runs", type=int, default=3, help="runs per N (1 from 100,000 on)")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds a phase may take")
    ap.add_argument("--sample", type=int, default=30, help="readers in the naive loop")
    ap.add_argument("--papers", type=int, default=2_000, help="papers a day")
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 readers, 40 papers a day")
    ap.add_argument(
        "--profile",
        nargs="?",
        const="send-outbox",
        choices=("send-outbox", "send-smtp", "publish"),
        help="cProfile this phase of the 1st run (default send-outbox) and print it",
    )
    ap.add_argument(
        "--world",
        type=Path,
        help="keep each N's world under this directory and reuse it next time (it is "
        "rebuilt when missing; delete it after changing the store's schema or ingest)",
    )
    ap.add_argument(
        "--semantic",
        action="store_true",
        help="with the optional semantic layer (its extra installed): ingest embeds every "
        "new paper (~0.1 CPU-s each) and ranking fuses the vectors; off by default, as in "
        "the default install, so the figures are the lexical day's",
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also send with the code of this checkout (e.g. `git worktree add DIR REV`), "
        "from its own world, after each run of this code, and print both rates and their "
        "ratio: the machine's speed changes from day to day, the ratio much less",
    )
    ap.add_argument("--year", action="store_true", help="the year's archive figures instead")
    ap.add_argument("--year-days", type=int, default=365, help="days of the --year world")
    ap.add_argument(
        "--year-work",
        type=Path,
        help="where --year puts its sites and the world's copy (default: $TMPDIR); it needs "
        "room for a copy of the world's store",
    )
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--prepare", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("work", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("DIGEST_SECRET", "bench-secret-of-at-least-32-bytes")
    if not args.phase and not args.prepare:  # the parent decides; its children inherit it
        os.environ["DIGEST_SEMANTIC"] = "on" if args.semantic else "off"
    else:  # a phase run by hand: the default install's lexical day, as the parent's
        os.environ.setdefault("DIGEST_SEMANTIC", "off")
    if args.quick:
        global FORK
        FORK = True
        args.readers, args.papers, args.sample = "200", 40, min(args.sample, 5)
    if args.prepare:
        print(json.dumps(prepare(args.work, args.prepare, args.papers)))
        return 0
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.work, args)))
        return 0
    if args.year:
        return year(args)
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start, "
        f"Python {platform.python_version()}; a day of {args.papers:,} papers after "
        f"{world.HISTORY} such days; median of {args.runs} runs (1 from 100,000 readers); "
        f"--budget {args.budget:.0f} s a phase; semantic layer "
        f"{'on' if args.semantic else 'off (--semantic)'}; CPU includes worker processes; "
        "the machine is shared: figures are noisy"
    )
    print(table_line([c[0] for c in COLUMNS]))
    print(table_line([c[1] for c in COLUMNS]))
    with tempfile.TemporaryDirectory(prefix="bench-day-") as tmp:
        try:
            return _days(args, Path(tmp))
        finally:  # every deletion after the last measurement (bench/_later.py)
            for home in {args.world or Path(tmp), Path(tmp)}:
                Later(home).empty()


def _days(args: argparse.Namespace, tmp: Path) -> int:
    """The table's rows, one per N, and their notes."""
    for n in (int(x) for x in args.readers.split(",")):
        home = args.world or tmp
        later = Later(tmp)
        # The other code's world first: its own earlier days delete their outboxes as
        # they go, so this code's world building comes between those deletions and the
        # first measured run (bench/_later.py).
        base = baseline.world(args.baseline, home, n, args) if args.baseline else None
        prepared, start = home / f"world-{n}-{args.papers}", time.perf_counter()
        reused = bool(args.world and (prepared / "built.json").exists())
        if reused:
            built = json.loads((prepared / "built.json").read_text())
        else:
            Later(home).put(prepared)
            built = child("--prepare", str(n), "--papers", str(args.papers), str(prepared))
            (prepared / "built.json").write_text(json.dumps(built))
        built_in = time.perf_counter() - start
        runs: list[dict[str, Any]] = []
        based: list[dict[str, Any]] = []
        while len(runs) < (1 if n >= 100_000 else args.runs):
            runs.append(one_run(prepared, tmp / f"run-{len(runs)}", args, not runs, later))
            args.profile = None
            if base is not None:
                work = tmp / f"baseline-{len(based)}"
                based.append(baseline.run(args.baseline, base, work, args, later))
            if any(runs[0][p]["stopped"] for p in PHASES):
                break  # a stopped phase would only be stopped again
        line, notes = row(n, runs, runs[0]["naive"])
        if based:
            notes.append(baseline.note(args.baseline, runs, based))
        ranked, started = runs[0]["rank"], runs[0]["startup"]
        stored = built["papers"] + args.papers
        notes.append(
            f"digest rank (one reader's keywords): the day's papers {ranked['rank_day']:.2f}"
            f" CPU s ({ranked['rank_day_items']} items), --all {stored:,} papers"
            f" {ranked['rank_all']:.2f} CPU s; CLI start-up (wall, median of 5): "
            + ", ".join(f"digest {c} {t:.2f} s" for c, t in started.items())
        )
        print(line)
        notes.append(
            f"world: {built['papers']:,} papers, {built['history_sent']:,} digests sent on "
            f"the earlier days, "
            + (f"reused from {prepared}" if reused else f"built in {built_in:.0f} s")
            + f"; {len(runs)} run(s)"
        )
        for note in notes:
            print(f"{'':9}{note}")
        for phase in ("send-outbox", "send-smtp", "publish"):
            if "profile" in runs[0][phase]:
                print(f"cProfile of {phase}:\n" + runs[0][phase]["profile"])
        if not args.world:
            later.put(prepared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
