"""`bench/day.py --baseline DIR`: the same day sent by another checkout's code, in the
same run, so a figure can be read against a known one.

This shared machine's speed moves from day to day by more than most changes do (the code
of session 12 measured 1,093 digests a CPU-second at 20,000 readers then, 616-647 on a
later day), so "at least 1,000 a CPU-second" is only comparable across sessions as a
ratio to code measured in the same minutes. The other code builds its own world (its
schema, its ingest: an older store need not open with this code) and runs its own phases
(`DIR/bench/day.py --prepare` and `--phase`), in processes of its own.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from _later import Later


def script_json(script: Path, *args: str) -> dict[str, Any]:
    """`script` with `args` in another process; the JSON its last line prints (day.py's
    `child` runs its own phases this way too)."""
    done = subprocess.run(
        [sys.executable, str(script), *args], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(code: Path, *args: str) -> dict[str, Any]:
    """`code`'s bench/day.py with `args` in another process."""
    return script_json(code / "bench" / "day.py", *args)


def world(code: Path, home: Path, n: int, args: argparse.Namespace) -> Path:
    """The other code's world for N readers, built by that code, kept beside this code's
    under --world (and reused from there, as this code's is)."""
    where = home / f"baseline-world-{n}-{args.papers}"
    if not (args.world and (where / "built.json").exists()):
        Later(home).put(where)
        built = _child(code, "--prepare", str(n), "--papers", str(args.papers), str(where))
        (where / "built.json").write_text(json.dumps(built))
    return where


def run(
    code: Path, prepared: Path, work: Path, args: argparse.Namespace, later: Later
) -> dict[str, Any]:
    """The other code through the day's ingest and its send to the outbox, from a copy of
    its world; the send's figures (cpu, sent, ...) as its phase printed them. The copy
    goes to `later`, as this code's do."""
    shutil.copytree(prepared, work)
    common = ["--budget", str(args.budget), "--sample", str(args.sample)]
    try:
        _child(code, "--phase", "ingest", str(work), *common)
        return _child(code, "--phase", "send-outbox", str(work), *common)
    finally:
        later.put(work)


def revision(code: Path) -> str:
    """The short commit of a checkout, or its path when git cannot say."""
    done = subprocess.run(
        ["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or str(code)


def note(code: Path, runs: list[dict[str, Any]], based: list[dict[str, Any]]) -> str:
    """Both codes' outbox rates, run by run and at the median, and their ratio."""
    mine = [r["send-outbox"]["sent"] / r["send-outbox"]["cpu"] for r in runs]
    theirs = [b["sent"] / b["cpu"] for b in based]
    a, b = statistics.median(mine), statistics.median(theirs)
    return (
        f"baseline {revision(code)} ({code}), the same day from its own world after each "
        f"run: {b:.0f} digests/CPU-s to the outbox (runs: "
        f"{', '.join(f'{x:.0f}' for x in theirs)}); this code {a:.0f} (runs: "
        f"{', '.join(f'{x:.0f}' for x in mine)}): {a / b:.2f}x"
    )
