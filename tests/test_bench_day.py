"""bench/day.py runs end to end (`--quick`): a header and one row of the expected columns.

Behaviour only: no figure is checked, a benchmark's numbers belong to the machine.
"""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import ROOT

COLUMNS = 14  #: readers, 4 phases, RSS, store growth x2, rates x2, digest size x2, naive x2


def test_quick_run_prints_the_header_and_one_row() -> None:
    """With `--baseline` (here this very checkout, so its own world and phases): the other
    code's rate beside this one's, and their ratio."""
    script = str(ROOT / "bench" / "day.py")
    done = subprocess.run(
        [sys.executable, script, "--quick", "--runs", "1", "--baseline", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("machine: ") and " cores, load average " in lines[0]
    header = lines[1].split()
    for column in ("readers", "ingest", "send-outbox", "send-smtp", "publish", "naive/send"):
        assert column in header
    rows = [line.split() for line in lines[3:] if line[:9].strip().isdigit()]
    assert len(rows) == 1
    assert rows[0][0] == "200" and len(rows[0]) == COLUMNS
    assert "sent to the outbox" in done.stdout and "received" in done.stdout
    (base,) = [line for line in lines if line.strip().startswith("baseline ")]
    assert f"({ROOT})" in base and "digests/CPU-s to the outbox (runs: " in base
    assert re.search(r"this code \d+ \(runs: \d+\): \d+\.\d\dx$", base), base
