"""The fault-injection suite (issue 14, item 7): each kind of fault, then a clean rerun,
then the invariants of `fault_harness` (no paper lost or doubled, one digest per reader
and day with one Message-ID, nothing failed that was not the reader's fault, the site
equal to a clean publish).

    make faults                      the long form: 20 rounds of each kind, counts printed
    python -m tests.faults --rounds 3 --seed 7 --kinds kill-send,smtp-451
    tests/test_faults.py             the short form inside `make test`

Kinds (`KINDS`): SIGKILL of `digest ingest`, `send`, `publish` and `schedule` after a
seeded-random number of observed events; SMTP 421/451/530/550 (sender and one reader),
a connection dropped mid-DATA and a server that never answers; SendGrid 429 with an
infinite or huge Retry-After or rate-limit reset, 401, 5xx and a timeout; a full disk
(RLIMIT_FSIZE in the child, SIGXFSZ ignored so writes fail as on a full file system);
a store locked past the busy timeout; a read-only store.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

from tests import fault_harness as h
from tests.fault_injections import INJECTIONS as KINDS
from tests.fault_injections import Templates


def run(
    kinds: list[str], rounds: int, seed: int, work: Path, *, keep_going: bool = False
) -> h.Tally:
    """`rounds` rounds of each of `kinds` (seeded), in fresh projects under `work`. With
    `keep_going` a broken invariant is recorded in `tally.failures` and the next round runs."""
    tally = h.Tally()
    templates = Templates(work / "templates")
    for kind in kinds:
        rng = random.Random(f"{seed}:{kind}")
        for n in range(rounds):
            before = _cpu()
            try:
                KINDS[kind](tally, rng, templates, work / f"{kind}-{n}")
            except AssertionError as exc:
                if not keep_going:
                    raise
                tally.failures.append(f"{kind} round {n}: {str(exc).splitlines()[0][:300]}")
            tally.rounds[kind] += 1
            tally.cpu[kind] += _cpu() - before
    return tally


def _cpu() -> float:
    """CPU seconds of this process and its finished children (a figure, not a bound)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds of each kind")
    parser.add_argument("--seed", type=int, default=14, help="the RNG seed (same seed, same run)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        parser.error(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
    started = time.monotonic()  # reported, never asserted on
    with tempfile.TemporaryDirectory(prefix="digest-faults-") as work:
        tally = run(kinds, args.rounds, args.seed, Path(work), keep_going=True)
    print(f"fault injection: seed {args.seed}, {args.rounds} rounds of {len(kinds)} kinds")
    for line in tally.lines():
        print(line)
    print(f"wall time {time.monotonic() - started:.1f} s")
    for failure in tally.failures:
        print(f"FAILED {failure}")
    raise SystemExit(1 if tally.failures else 0)


__all__ = ["KINDS", "main", "run"]

if __name__ == "__main__":
    main()
