"""Nothing burnt (issue 14): a refused sender pauses a run and leaves every digest pending;
ids carry the installation and the address; `--date` never moves a schedule; a bad
subscriber row skips that reader only; exit codes say what happened."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import Config
from digest.deliver import make_backend
from digest.send import delivery_id, retry_due, send
from digest.store import Store

from .smtp_servers import RejectingSender, SmtpServer, Transient
from .test_send import DAY1, PEFT, SPEECH, seeded, smtp_config


def test_a_refused_sender_pauses_leaving_every_digest_pending(seeded_project: Path) -> None:
    with SmtpServer(RejectingSender(550)) as server:
        config = smtp_config(seeded_project, server.port)
        store = seeded(config, ("ada@example.org", PEFT), ("bob@example.org", SPEECH))
        backend = make_backend(config.delivery)
        report = send(config, store, backend, DAY1)
        assert (report.claimed, report.sent, report.failed, report.retry) == (2, 0, 0, 0)
        assert report.paused == 2 and "550" in report.paused_reason
        assert report.exit_code == 2 and "PAUSED" in report.summary()
        assert [(d.state, d.attempts) for d in store.deliveries()] == [("pending", 0)] * 2
        assert server.handler.mail_attempts == 1  # one refusal stopped the run
        # The operator fixes the sender: the same digests go out, nothing was burnt.
        backend.close()
        server.reset()
        backend = make_backend(config.delivery)
        again = send(config, store, backend, DAY1 + timedelta(minutes=5))
        assert (again.claimed, again.sent, again.exit_code) == (0, 2, 0)
        assert sorted(r.rcpt_tos[0] for r in server.received) == [
            "ada@example.org",
            "bob@example.org",
        ]
        backend.close()
        store.close()


def test_cli_send_exit_codes_and_json(seeded_project: Path) -> None:
    with SmtpServer(RejectingSender(530)) as server:
        config = smtp_config(seeded_project, server.port)
        seeded(config, ("ada@example.org", PEFT)).close()
        project = ["--config", str(seeded_project / "config.toml"), "--allow-local-links"]
        args = [*project, "--now", DAY1.isoformat()]
        paused = CliRunner().invoke(cli, [*args, "send", "--json"])
        assert paused.exit_code == 2
        body = json.loads(paused.stdout)
        assert body["paused"] == 1 and body["exit_code"] == 2 and "530" in body["paused_reason"]
        server.reset(Transient(code=451, first=1))
        retry = CliRunner().invoke(cli, [*args, "send"])
        assert retry.exit_code == 1 and "1 to retry" in retry.stdout
        later = [*project, "--now", "2025-10-16T09:00Z"]
        done = CliRunner().invoke(cli, [*later, "send"])
        assert done.exit_code == 0 and "1 sent" in done.stdout


def test_a_future_date_is_refused_and_never_moves_a_weekly_reader(seeded_config: Config) -> None:
    config = seeded_config
    store = seeded(config, ("ada@example.org", PEFT))
    store.upsert_subscriber("ada@example.org", None, now=DAY1, frequency="weekly")
    backend = make_backend(config.delivery)
    future = send(config, store, backend, DAY1, digest_date=date(2025, 12, 1))
    assert (future.due, future.claimed) == (0, 0)  # a day to come is never claimed
    assert send(config, store, backend, DAY1).sent == 1  # this week's digest still goes
    args = ["--config", str(config.path), "--now", DAY1.isoformat(), "send", "--date"]
    refused = CliRunner().invoke(cli, [*args, "2025-12-01"])
    assert refused.exit_code == 2 and "still to come" in refused.stderr
    assert "Traceback" not in refused.output
    store.close()


def test_an_unknown_time_zone_skips_that_reader_only(seeded_config: Config) -> None:
    config = seeded_config
    store = seeded(config, ("ada@example.org", PEFT), ("bob@example.org", SPEECH))
    with sqlite3.connect(config.store_path) as db:  # a row another tool (or tzdata) broke
        db.execute("UPDATE subscribers SET timezone = 'Mars/Olympus' WHERE email LIKE 'ada%'")
    report = send(config, store, make_backend(config.delivery), DAY1)
    assert report.sent == 1 and report.exit_code == 1
    ((_, why),) = report.skipped
    assert "Mars/Olympus" in why and "skipped" in report.summary()
    store.close()


def test_ids_carry_the_installation_and_the_address(tmp_path: Path) -> None:
    day = date(2025, 10, 16)
    with Store(tmp_path / "a.sqlite3") as a, Store(tmp_path / "b.sqlite3") as b:
        first, second = a.installation_id, b.installation_id
        assert first != second and len(first) == 32 and a.installation_id == first
    ada = delivery_id(first, 1, "ada@example.org", day)
    assert ada == delivery_id(first, 1, "ada@example.org", day)
    assert ada != delivery_id(second, 1, "ada@example.org", day)  # a rebuilt store
    assert ada != delivery_id(first, 1, "bob@example.org", day)  # a reused subscriber id


def test_a_restored_store_does_not_find_old_outbox_files(seeded_config: Config) -> None:
    """A new reader given a reused subscriber id after a restore got nothing (the outbox
    found the old reader's file and said "sent"): the address is in the id now."""
    config = seeded_config
    backup = config.store_path.with_name("backup.sqlite3")
    with Store(config.store_path) as store, sqlite3.connect(backup) as copy:
        store._db.backup(copy)  # as an operator's backup would
    store = seeded(config, ("ada@example.org", PEFT))
    assert send(config, store, make_backend(config.delivery), DAY1).sent == 1
    store.close()
    backup.replace(config.store_path)
    for suffix in ("-wal", "-shm"):
        Path(f"{config.store_path}{suffix}").unlink(missing_ok=True)
    store = seeded(config, ("bob@example.org", SPEECH))
    (bob,) = store.subscribers()
    assert bob.id == 1  # the id ada had
    report = send(config, store, make_backend(config.delivery), DAY1)
    assert report.sent == 1 and len(list(config.delivery.outbox_dir.glob("*.eml"))) == 2
    store.close()


def test_the_retry_sweep_sends_retries_without_claiming(seeded_project: Path) -> None:
    with SmtpServer(Transient(code=451, first=1)) as server:
        config = smtp_config(seeded_project, server.port)
        store = seeded(config, ("ada@example.org", PEFT))
        backend = make_backend(config.delivery)
        assert send(config, store, backend, DAY1).retry == 1
        assert retry_due(config, store, backend, DAY1 + timedelta(seconds=30)).sent == 0
        swept = retry_due(config, store, backend, DAY1 + timedelta(minutes=1))
        assert (swept.sent, swept.claimed, swept.due) == (1, 0, 0)
        backend.close()
        store.close()


def test_the_store_and_outbox_files_are_private(seeded_config: Config) -> None:
    mode = 0o600
    config = seeded_config
    fresh = config.store_path.with_name("fresh.sqlite3")
    Store(fresh).close()
    assert fresh.stat().st_mode & 0o777 == mode
    store = seeded(config, ("ada@example.org", PEFT))
    send(config, store, make_backend(config.delivery), DAY1)
    (eml,) = config.delivery.outbox_dir.glob("*.eml")
    assert eml.stat().st_mode & 0o777 == mode
    store.close()


def test_subscribe_with_a_refused_sender_is_exit_2_not_server_busy(project: Path) -> None:
    with SmtpServer(RejectingSender(550)) as server:
        config = smtp_config(project, server.port)
        base = ["--config", str(config.path), "--allow-local-links"]
        result = CliRunner().invoke(cli, [*base, "subscribe", "ada@example.org", "-k", "LoRA"])
        assert result.exit_code == 2 and "refused the sender or key" in result.stdout
        server.reset(Transient(code=451, first=1))
        again = CliRunner().invoke(cli, [*base, "subscribe", "bob@example.org", "-k", "x"])
        assert again.exit_code == 1 and "NOT sent yet" in again.stdout


def test_import_with_a_refused_sender_imports_and_exits_2(project: Path) -> None:
    rows = project / "readers.csv"
    rows.write_text("email,keywords\na@example.org,LoRA\nb@example.org,TTS\n")
    with SmtpServer(RejectingSender(550)) as server:
        config = smtp_config(project, server.port)
        args = ["--config", str(config.path), "--allow-local-links", "subscribers", "import"]
        result = CliRunner().invoke(cli, [*args, str(rows)])
    assert result.exit_code == 2 and "2 new" in result.stdout
    assert result.stderr.count("not sent (paused:") == 2


def test_backoff_never_overflows_after_many_attempts(config: Config, store: Store) -> None:
    from dataclasses import replace

    from digest.deliver import SendResult
    from digest.deliver.memory import MemoryBackend
    from digest.dispatch import BACKOFF_CAP, MAX_WAIT, Dispatcher, Job

    many = replace(config, delivery=replace(config.delivery, max_attempts=10_000))
    dispatcher = Dispatcher(many, store, MemoryBackend(), DAY1, lambda elapsed: None)
    job = Job("d-1", "ada@example.org", 5_000, None)
    plain = dispatcher._outcome(job, SendResult("d-1", "retry", "451"))
    assert plain.next_attempt_at == DAY1 + BACKOFF_CAP
    asked = dispatcher._outcome(job, SendResult("d-1", "retry", "429", retry_after=1e300))
    assert asked.next_attempt_at == DAY1 + MAX_WAIT


def test_a_short_secret_stops_the_send_before_anything_is_claimed(
    seeded_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.errors import ConfigError

    store = seeded(seeded_config, ("ada@example.org", PEFT))
    monkeypatch.setenv("DIGEST_SECRET", "short")
    with pytest.raises(ConfigError, match="DIGEST_SECRET: too short"):
        send(seeded_config, store, make_backend(seeded_config.delivery), DAY1)
    assert store.deliveries() == []  # nothing claimed, nothing burnt
    store.close()
