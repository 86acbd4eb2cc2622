"""Issue 14 item 2: a valid one-click unsubscribe lands under load and with a busy store.

Through the real server on 127.0.0.1 (uvicorn in a thread) and a real SQLite file; the
busy store is a real `BEGIN IMMEDIATE` held on another connection, released by the test.
"""

from __future__ import annotations

import sqlite3
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.bulk import ImportRow
from digest.config import Config, load_config
from digest.rank import make_profile
from digest.serve import make_server, serve_in_thread
from digest.store import Store
from digest.store.journal import journal_path
from digest.tokens import load_secret, make_token
from tests.conftest import copy_project

NOW = datetime(2025, 10, 16, 9, tzinfo=UTC)
READERS = 200


@dataclass
class Project:
    config: Config
    url: str
    tokens: dict[int, str]  #: subscriber id -> unsubscribe token


def _post(url: str) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = copy_project(tmp_path_factory.mktemp("unsubscribe-load"))
    config = load_config(root / "config.toml", required=True)
    profile = make_profile("p", ("LoRA",))
    rows = [ImportRow(n + 1, f"r{n}@example.org", profile) for n in range(READERS)]
    with Store(config.store_path) as store:
        for _ in store.upsert_subscribers(rows, NOW, confirmed=True):
            pass
        subs = store.subscribers()
    secret = load_secret(config)
    tokens = {s.id: make_token(secret, "unsubscribe", s.id, s.email, NOW) for s in subs}
    # A short wait before queueing keeps the locked-store test cheap; the default is 2 s.
    srv = make_server(
        config, config.store_path, lambda: NOW, port=0, site_dir=root / "site", unsubscribe_wait=0.1
    )
    thread = serve_in_thread(srv)
    try:
        yield Project(config, srv.url, tokens)
    finally:
        srv.stop()
        thread.join()


def _statuses(config: Config) -> dict[int, str]:
    with Store(config.store_path) as store:
        return {s.id: s.status for s in store.subscribers()}


def _resubscribe_all(config: Config) -> None:
    with Store(config.store_path) as store:
        for sub_id in _statuses(config):
            store.set_subscriber_status(sub_id, "confirmed", NOW)


def test_200_concurrent_one_click_posts_all_land(project: Project) -> None:
    _resubscribe_all(project.config)
    urls = [f"{project.url}/unsubscribe?token={t}" for t in project.tokens.values()]
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(_post, urls))
    assert sorted({status for status, _ in answers}) in ([200], [200, 202], [202])
    assert set(_statuses(project.config).values()) == {"unsubscribed"}


def test_posts_to_a_write_locked_store_are_queued_then_applied(project: Project) -> None:
    _resubscribe_all(project.config)
    chosen = list(project.tokens.items())[:5]
    locker = sqlite3.connect(project.config.store_path, isolation_level=None, timeout=0)
    locker.execute("BEGIN IMMEDIATE")  # another process's long write
    try:
        answers = [_post(f"{project.url}/unsubscribe?token={token}") for _, token in chosen]
        journal = journal_path(project.config.store_path)
        assert stat.S_IMODE(journal.stat().st_mode) == 0o600
        # Queued (a later request may have moved the first lines aside to apply them,
        # and left them there while the lock held), not yet applied.
        queued = [journal, journal.with_name(journal.name + ".applying")]
        lines = sum(len(p.read_text().splitlines()) for p in queued if p.exists())
        assert lines == len(chosen)
        assert {_statuses(project.config)[sub_id] for sub_id, _ in chosen} == {"confirmed"}
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    for status, body in answers:
        assert status == 202 and "no more digests" in body
        assert str(project.config.store_path.parent) not in body
    statuses = _statuses(project.config)  # the next opener applies the queue
    assert all(statuses[sub_id] == "unsubscribed" for sub_id, _ in chosen)
    assert list(statuses.values()).count("unsubscribed") == len(chosen)
    assert not any(p.exists() for p in queued)


def test_a_store_that_cannot_be_read_is_a_503_without_its_path(
    project: Project, tmp_path: Path
) -> None:
    # An exclusive lock blocks readers too (not WAL's usual case): the token cannot be
    # checked, so the answer is "try again" (never a final 4xx), and names no file.
    locker = sqlite3.connect(project.config.store_path, isolation_level=None, timeout=0)
    locker.execute("PRAGMA locking_mode = EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    try:
        token = next(iter(project.tokens.values()))
        status, body = _post(f"{project.url}/unsubscribe?token={token}")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert status == 503 and "try again" in body.lower()
    assert str(Path(project.config.store_path).parent) not in body


def test_send_applies_the_queue_before_planning(project: Project) -> None:
    from digest import pipeline
    from digest.store import QueuedUnsubscribe

    _resubscribe_all(project.config)
    with Store(project.config.store_path) as store:
        gone = store.subscribers()[0]
        store.queue_unsubscribe(QueuedUnsubscribe(gone.id, gone.email, NOW))  # after opening
        report = pipeline.send_due(project.config, store, None, NOW, dry_run=True)
    assert report.due == READERS - 1  # the queued reader is not due any more
