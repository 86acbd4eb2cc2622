"""`make bench`: 10,000 subscribers through a local SMTP server, exactly-once bookkeeping on.

The SMTP server is a minimal asyncio sink (accepts and counts; the tests use aiosmtpd,
whose own parsing costs about as much CPU per message as our whole send does) in a
separate process on 127.0.0.1, so it does not share our GIL; it offers PIPELINING, as
the relays a list sends through (Postfix, Gmail, SES) do. The store holds the seed
papers and N confirmed subscribers with 1-2 keyword profiles; the timed part is one
`digest send` run: claim (rank, freeze, claim + sent-ledger) and deliver (render from
the frozen digest, SMTP with connection reuse, record each outcome). Printed:
messages/s for each number of parallel connections (median of runs), peak RSS.
Target: >= 500 messages/s to loopback on 2 cores.

usage: python bench/send.py [--subscribers 10000] [--connections 1,4] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOW = datetime(2025, 10, 16, 9, tzinfo=UTC)
TOPICS = [
    ["LoRA", "adapters"],
    ["speech", "TTS"],
    ["video generation"],
    ["quantization"],
    ["diffusion", "3D"],
    ["reinforcement learning", "RLHF"],
    ["agents", "tool use"],
    ["retrieval", "RAG"],
    ["federated learning"],
    ["distillation", "pruning"],
]

SERVER = r"""
import asyncio, sys

class Sink(asyncio.Protocol):
    count = 0

    def connection_made(self, transport):
        self.t, self.buf, self.data = transport, b"", False
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, chunk):
        self.buf += chunk
        while True:
            if self.data:
                end = self.buf.find(b"\r\n.\r\n")
                if end < 0:
                    return
                self.buf, self.data = self.buf[end + 5:], False
                Sink.count += 1
                self.t.write(b"250 2.0.0 queued\r\n")
                continue
            line, sep, rest = self.buf.partition(b"\r\n")
            if not sep:
                return
            self.buf, verb = rest, line[:4].upper()
            if verb == b"EHLO":
                self.t.write(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                self.data = True
                self.t.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.t.write(b"221 bye\r\n")
                self.t.close()
            else:
                self.t.write(b"250 OK\r\n")

async def main():
    server = await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()
    print(Sink.count, flush=True)

asyncio.run(main())
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink() -> tuple[subprocess.Popen[str], int]:
    """The SMTP sink in its own process, listening; its port. Close its stdin to stop it:
    it then prints how many messages it received."""
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    return sink, port


def project(tmp: Path, port: int, connections: int) -> Path:
    shutil.copytree(ROOT / "seeds", tmp / "seeds")
    text = (ROOT / "config.toml").read_text().replace('backend = "outbox"', 'backend = "smtp"')
    text += f'\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {port}\nconnections = {connections}\n'
    (tmp / "config.toml").write_text(text)
    return tmp / "config.toml"


def one_run(subscribers: int, connections: int) -> tuple[float, float, int]:
    from digest import pipeline
    from digest.config import load_config
    from digest.deliver import make_backend
    from digest.rank import make_profile
    from digest.send import send
    from digest.store import Store

    os.environ.setdefault("DIGEST_SECRET", "bench-secret-of-at-least-32-bytes")
    server, port = start_sink()
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(project(Path(tmp), port, connections), required=True)
        rng = random.Random(1)
        with Store(config.store_path) as store:
            pipeline.ingest(config, store, now=NOW - timedelta(hours=1))  # arrived today
            for i in range(subscribers):
                topics = rng.sample(TOPICS, rng.choice((1, 2)))
                spec = make_profile("papers", tuple(k for t in topics for k in t))
                store.upsert_subscriber(
                    f"reader{i}@example.org", spec, confirmed=True, now=NOW - timedelta(days=1)
                )
            backend = make_backend(config.delivery)
            start = time.perf_counter()
            report = send(config, store, backend, NOW)
            total = time.perf_counter() - start
            backend.close()
    assert server.stdin is not None
    server.stdin.close()
    received = int(server.stdout.readline())
    server.wait(timeout=30)
    assert report.sent == received, (report, received)
    return total, report.sent / total, report.sent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--connections", default="1,4")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(
        f"{args.subscribers} subscribers, one send run each time (claim + deliver), "
        f"SMTP sink in another process on 127.0.0.1; median of {args.runs} runs"
    )
    for connections in (int(c) for c in args.connections.split(",")):
        runs = [one_run(args.subscribers, connections) for _ in range(args.runs)]
        rate = statistics.median(r[1] for r in runs)
        print(
            f"connections={connections}: {rate:7.0f} messages/s  "
            f"({runs[0][2]} sent; {statistics.median(r[0] for r in runs):.1f} s per run; "
            f"runs: {[round(r[1]) for r in runs]})"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
