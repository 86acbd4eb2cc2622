"""The parts of the fault-injection suite (`tests/faults.py`): projects, killed children and
the invariants checked after every fault.

A project is the embedded default (config.toml + seeds/) in a fresh directory, its store
seeded in-process at a fixed clock (`NOW`) with `READERS` confirmed readers. A killed
child is `digest` in a real subprocess on that real store, run through `CHILD`, which
prints `START` and one `PROGRESS` line per progress event on stderr: the harness reads
those lines and sends SIGKILL after the k-th one (k drawn from a seeded RNG), so the kill
point is an observed event, never a sleep.

The invariants, checked after the fault and a clean rerun:

    papers     the store holds exactly the papers of a clean ingest (none lost, none twice)
    digests    every delivery for (reader, day) is sent once: one message each in the sink
               (outbox files, SMTP server or SendGrid stand-in), Message-IDs all distinct
    failed     nothing is marked failed that was not the reader's fault
    site       the published site is byte for byte a clean full publish of the same store
"""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from digest import pipeline
from digest.cli import cli
from digest.config import Config, load_config
from digest.model import Paper
from digest.rank import make_profile
from digest.store import Store
from digest.subscriptions import subscribe

ROOT = Path(__file__).resolve().parent.parent
#: The clock of every run: the Oct 16 capture's papers are new on this day; they are
#: ingested two hours before (as tests/conftest.py's seeded template is).
NOW = datetime(2025, 10, 16, 8, tzinfo=UTC)
INGEST_AT = NOW - timedelta(hours=2)
SECRET = "fault-suite-secret-0123456789abcdef-0123"
#: Readers of every project: addresses and keywords (each gets a digest on NOW's day).
READERS = (
    ("ada@example.org", ("LoRA", "parameter-efficient fine-tuning", "adapters")),
    ("bob@example.org", ("speech", "TTS", "ASR")),
    ("cy@example.org", ("video generation", "video diffusion")),
    ("di@example.org", ("quantization", "distillation")),
    ("ed@example.org", ("reinforcement learning", "reasoning")),
)
#: A child that outlives this is hung: killed and reported (a guard, not a clock in a test).
HANG_GUARD = 120.0

#: `digest` with its progress reported as lines on stderr (for the killer to count).
CHILD = """
import os, resource, signal, sys
from contextlib import contextmanager
from digest.cli import main, mail, papers, site
from digest.store import Store

if os.environ.get("FAULT_FSIZE"):  # a full disk: writes past this size fail with EFBIG
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(os.environ["FAULT_FSIZE"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
if os.environ.get("FAULT_BUSY"):  # a short busy timeout, to meet a held lock quickly
    Store.__init__.__kwdefaults__["timeout"] = float(os.environ["FAULT_BUSY"])

@contextmanager
def progress(label):
    def update(done, total, name):
        print(f"PROGRESS {label} {done}/{total}", file=sys.stderr, flush=True)
    yield update

for module in (mail, papers, site):
    module._progress = progress
print("START", file=sys.stderr, flush=True)
sys.argv = ["digest", *sys.argv[1:]]
main()
"""


def child_env() -> dict[str, str]:
    env = dict(os.environ, DIGEST_SECRET=SECRET, PYTHONPATH=str(ROOT))
    env.pop("COLUMNS", None)
    return env


@dataclass
class Tally:
    """What a run of the suite did: the counts the long form prints."""

    rounds: Counter[str] = field(default_factory=Counter)
    kills: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    cpu: Counter[str] = field(default_factory=Counter)  #: CPU seconds per kind (children too)
    failures: list[str] = field(default_factory=list)  #: broken invariants (long form)

    def check(self, name: str, ok: bool, detail: str) -> None:
        """One invariant: counted, and an AssertionError naming it when it fails."""
        self.checks[name] += 1
        if not ok:
            raise AssertionError(f"invariant {name!r} broken: {detail}")

    def lines(self) -> list[str]:
        total = sum(self.checks.values())
        out = [
            f"rounds {sum(self.rounds.values())} ({_counts(self.rounds)})",
            f"kills {sum(self.kills.values())} ({_counts(self.kills)})",
            f"faults {sum(self.faults.values())} ({_counts(self.faults)})",
            f"invariant checks {total} ({_counts(self.checks)}), "
            + (f"{len(self.failures)} rounds broke one" if self.failures else "all held"),
            "CPU s " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(self.cpu.items())),
        ]
        return out


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


# -- projects -------------------------------------------------------------------------------


def new_project(dest: Path, *, extra: str = "") -> Path:
    """config.toml (+ `extra` TOML) and seeds/ in `dest`; no store yet."""
    dest.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "config.toml").read_text()
    (dest / "config.toml").write_text(text + extra)
    shutil.copytree(ROOT / "seeds", dest / "seeds")
    return dest


def add_readers(project: Path) -> Config:
    """Confirm READERS the day before NOW (in-process)."""
    config = load_config(project / "config.toml", required=True)
    with Store(config.store_path) as store:
        for address, words in READERS:
            profile = make_profile(address.split("@")[0], words)
            subscribe(config, store, address, profile, NOW - timedelta(days=1), confirmed=True)
    return config


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def invoke(
    project: Path, *args: str, now: datetime = NOW, env: Mapping[str, str] | None = None
) -> tuple[int, str, str]:
    """`digest` in-process (CliRunner) on `project` at `now`: (exit code, stdout, stderr)."""
    argv = ["--config", str(project / "config.toml"), "--now", now.isoformat()]
    result = CliRunner(env={"DIGEST_SECRET": SECRET, **(env or {})}).invoke(
        cli, [*argv, "--allow-local-links", *args]
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


# -- killed children ------------------------------------------------------------------------


@dataclass(frozen=True)
class Killed:
    killed: bool  #: False: the child finished before the k-th event
    events: int  #: progress events seen before the kill
    code: int
    stderr: str


def run_and_kill(
    project: Path,
    args: Iterable[str],
    kill_after: int,
    *,
    script: str = CHILD,
    marker: tuple[str, ...] = ("START", "PROGRESS"),
    fsize: int | None = None,
    busy_timeout: float | None = None,
    share: float | None = None,
) -> Killed:
    """Run `digest ARGS` as a child and SIGKILL it right after its `kill_after`-th event
    line (0 = the first, START; -1 = never), or with `share`, after the first progress
    line at least that share of the way (done/total). A child that finishes first is left
    alone. `fsize` caps the size of every file it writes; `busy_timeout` is its store's."""
    argv = ["--config", str(project / "config.toml"), "--now", NOW.isoformat(), *args]
    env = child_env()
    if fsize is not None:
        env["FAULT_FSIZE"] = str(fsize)
    if busy_timeout is not None:
        env["FAULT_BUSY"] = str(busy_timeout)
    if args[:1] == ["ingest"]:
        argv[3] = INGEST_AT.isoformat()
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "--allow-local-links", *argv],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    guard = threading.Timer(HANG_GUARD, proc.kill)
    guard.start()
    seen, killed, lines = 0, False, []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if line.startswith(marker):
                if seen == kill_after or (share is not None and _reached(line, share)):
                    proc.send_signal(signal.SIGKILL)
                    killed = True
                    break
                seen += 1
        lines.append(proc.stderr.read())
        code = proc.wait()
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    err = "".join(lines)
    assert "Traceback" not in err, err
    return Killed(killed, seen, code, err)


def _reached(line: str, share: float) -> bool:
    """Whether a `PROGRESS label done/total` line is at least `share` of the way."""
    if not line.startswith("PROGRESS"):
        return share == 0
    done, _, total = line.split()[-1].partition("/")
    return int(done) >= share * max(int(total), 1)


# -- invariants -----------------------------------------------------------------------------


def papers_of(store_path: Path) -> list[Paper]:
    with Store(store_path) as store:
        return sorted(store.papers(), key=lambda p: p.id)


def check_papers(tally: Tally, store_path: Path, reference: list[Paper]) -> None:
    got = papers_of(store_path)
    ids = [p.id for p in got]
    tally.check("no paper doubled", len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} twice")
    lost = {p.id for p in reference} - set(ids)
    tally.check("no paper lost", not lost, f"{len(lost)} lost, e.g. {sorted(lost)[:3]}")
    tally.check("papers as a clean ingest", got == reference, "stored papers differ")


def check_digests(
    tally: Tally,
    store_path: Path,
    sent_ids: Iterable[str],
    *,
    message_ids: Iterable[str] = (),
    readers_fault: frozenset[str] = frozenset(),
) -> None:
    """One message per (reader, day) in the sink, one Message-ID each; every reader
    either sent or (only if `readers_fault` names them) failed."""
    with Store(store_path) as store:
        deliveries = store.deliveries()
        subscribers = store.subscribers(status="confirmed")
    per_reader_day = Counter((d.subscriber_id, d.digest_date) for d in deliveries)
    tally.check(
        "one delivery per reader per day",
        set(per_reader_day.values()) <= {1},
        str(per_reader_day),
    )
    sent = Counter(sent_ids)
    doubled = [i for i, n in sent.items() if n > 1]
    tally.check("no digest sent twice", not doubled, f"{len(doubled)} twice: {doubled[:3]}")
    mids = list(message_ids)
    tally.check("one Message-ID per message", len(mids) == len(set(mids)), str(Counter(mids)))
    state = {d.email: (d.state, d.id, d.reason) for d in deliveries}
    for sub in subscribers:
        got = state.get(sub.email)
        want = "failed" if sub.email in readers_fault else "sent"
        tally.check(
            "every reader's digest sent" if want == "sent" else "only the reader's fault failed",
            got is not None and got[0] == want,
            f"{sub.email}: {got}",
        )
        if got and got[0] == "sent":
            tally.check("sent means in the sink", sent[got[1]] == 1, f"{sub.email}: {got[1]}")


def outbox_messages(outbox: Path) -> tuple[list[str], list[str]]:
    """(delivery ids, Message-IDs) of the .eml files in `outbox`."""
    ids, mids = [], []
    for path in sorted(outbox.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        ids.append(str(msg["X-Digest-Delivery"]))
        mids.append(str(msg["Message-ID"]))
    return ids, mids


def site_files(site: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()
    }


def check_site(tally: Tally, project: Path, scratch: Path) -> None:
    """The site equals a clean full publish of the same store (into `scratch`)."""
    config = load_config(project / "config.toml", required=True)
    with Store(config.store_path) as store:
        pipeline.publish(config, store, NOW, out_dir=scratch, full=True)
    got, want = site_files(config.publish.dir), site_files(scratch)
    differ = sorted(k for k in got.keys() | want.keys() if got.get(k) != want.get(k))
    tally.check("site equals a clean publish", not differ, f"{len(differ)} differ: {differ[:5]}")


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """`directory` read-only while inside: a read-only tmpfs mounted over a copy of it when
    root (root ignores file modes), else its files and itself chmod-ed read-only."""
    if os.geteuid() == 0:
        saved = directory.with_name(directory.name + ".saved")
        shutil.copytree(directory, saved)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(directory)], check=True
        )
        try:
            shutil.copytree(saved, directory, dirs_exist_ok=True)
            subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
            yield
        finally:
            subprocess.run(["umount", "-l", str(directory)], check=True)
            shutil.rmtree(saved)  # the directory under the mount was never touched
        return
    modes = {p: p.stat().st_mode for p in [directory, *directory.rglob("*")]}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
