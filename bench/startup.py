"""`python bench/startup.py`: what the CLI costs before it does any work, and what rank and
preview cost on a large store.

Start-up: each command runs in a fresh `python -m digest` on an empty store (the default
config.toml and seeds in a temporary project), several times; the median CPU seconds
(user + sys of the child, from `getrusage(RUSAGE_CHILDREN)`) are printed, beside the naive
approach measured in the same run: an interpreter that imports every digest module eagerly
(`import digest.cli, digest.send, digest.rank.ranker, ...`), which is what the CLI would cost
if each command imported at module level what some command needs.

The package is byte-compiled first (`compileall`), as an installed package is: with
PYTHONDONTWRITEBYTECODE set and no __pycache__, every run would compile the sources again
and time that instead.

Rank/preview (`--world DIR`, a bench world with `config.toml` and `var/digest.sqlite3`, e.g.
/work/bench-worlds/year-30x2000; the store is copied to a temporary directory first, so the
world is never written): `digest rank` and `digest preview` for the newest day (`--since` the
day of the newest arrival) and, for comparison, `rank --all` over the whole store, with
their peak RSS. The day's figures should not grow with the store.

usage: python bench/startup.py [--runs 7] [--world DIR]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Commands that neither rank nor render: what a user types most.
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--help",),
    ("subscribers",),
    ("subscribers", "export"),
    ("deliveries",),
    ("config", "check"),
    ("schedule", "--help"),
    ("rank", "--help"),
    ("send", "--dry-run"),
)
#: The naive approach: every module a command might need, imported up front.
EAGER = (
    "import digest.cli, digest.pipeline, digest.send, digest.plan, digest.dispatch,"
    " digest.rank.ranker, digest.render.digest, digest.publish, digest.sources.feed,"
    " digest.sources.hf_api, digest.sources.html_listing, digest.schedule, digest.web,"
    " digest.serve, digest.subscriptions"
)
KEYWORDS = "LoRA, quantization"


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DIGEST_SECRET": os.environ.get("DIGEST_SECRET", "bench-secret-0123456789abcdef-0123"),
    }


def run_cpu(args: list[str], cwd: Path) -> tuple[float, int]:
    """CPU seconds (user + sys) and peak RSS (kB) of one child process running `args`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # A fresh child per run; wait4 gives that child's own peak RSS.
    proc = subprocess.Popen(
        args, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):  # 1: `rank` found nothing, still a measured run
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {err.strip()}")
    if proc.stderr:
        proc.stderr.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, usage.ru_maxrss


def median_cpu(args: list[str], cwd: Path, runs: int) -> tuple[float, int]:
    """The median CPU seconds of `runs` runs, and the largest peak RSS (kB)."""
    got = [run_cpu(args, cwd) for _ in range(runs)]
    return statistics.median(c for c, _ in got), max(r for _, r in got)


def startup(runs: int) -> None:
    """Print each command's median CPU-s on an empty store beside the eager-import cost.

    The runs go round-robin over the commands, so a busy spell on the machine falls on
    all of them alike rather than on whichever command was running then."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        project = Path(tmp)
        shutil.copy(ROOT / "config.toml", project)
        shutil.copytree(ROOT / "seeds", project / "seeds")
        py = sys.executable
        subprocess.run([py, "-m", "digest", "subscribers"], cwd=project, env=_env(), check=True,
                       capture_output=True)  # fmt: skip
        cases = {
            "python -c pass": [py, "-c", "pass"],
            "naive: import everything": [py, "-c", EAGER],
            **{"digest " + " ".join(cmd): [py, "-m", "digest", *cmd] for cmd in COMMANDS},
        }
        cpu: dict[str, list[float]] = {label: [] for label in cases}
        for _ in range(runs):
            for label, args in cases.items():
                cpu[label].append(run_cpu(args, project)[0])
        med = {label: statistics.median(v) for label, v in cpu.items()}
        eager = med["naive: import everything"]
        print(f"start-up, CPU-s (user+sys), median of {runs} (round-robin), empty store")
        for label, value in med.items():
            naive = label.startswith("digest")
            ratio = f"   {eager / value:4.1f}x less than naive" if naive else ""
            print(f"  {label:28} {value:6.3f}{ratio}")


def rank_figures(world: Path, runs: int) -> None:
    """Print rank/preview CPU-s and peak RSS on a copy of `world`'s store."""
    src = world / "var" / "digest.sqlite3"
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        project = Path(tmp)
        shutil.copy(world / "config.toml", project)
        (project / "var").mkdir()
        shutil.copy(src, project / "var" / "digest.sqlite3")
        with sqlite3.connect(project / "var" / "digest.sqlite3") as db:
            papers, newest = db.execute("SELECT count(*), max(arrived_at) FROM papers").fetchone()
        day = str(newest)[:10]
        py = sys.executable
        print(f"\nrank/preview on {world.name}: {papers:,} papers, newest day {day}")
        print(f"CPU-s (user+sys), median of {runs}; peak RSS")
        cases = (
            ("rank, newest day", ["rank", "-k", KEYWORDS, "--since", day]),
            ("preview, newest day", ["preview", "-k", KEYWORDS, "--since", day]),
            ("rank --all (whole store)", ["rank", "-k", KEYWORDS, "--all"]),
        )
        for label, args in cases:
            n = runs if "--all" not in args else max(1, runs // 3)
            cpu, rss = median_cpu([py, "-m", "digest", *args], project, n)
            print(f"  {label:28} {cpu:6.2f} s  {rss / 1024:6.0f} MB  (median of {n})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--world", type=Path, help="a bench world with var/digest.sqlite3")
    opts = parser.parse_args()
    compileall.compile_dir(ROOT / "digest", quiet=1)
    startup(opts.runs)
    if opts.world:
        rank_figures(opts.world, max(1, opts.runs // 2))


if __name__ == "__main__":
    main()
