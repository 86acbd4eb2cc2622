"""The outbox backend: atomic, idempotent .eml files; and the backend registry."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from digest.config import DeliveryConfig, SendgridConfig, SmtpConfig
from digest.deliver import Backend, SendResult, backend_names, make_backend
from digest.deliver.outbox import OutboxBackend
from digest.deliver.wire import message_bytes
from digest.errors import DeliveryError
from tests.factories import make_email
from tests.sendgrid_server import SendgridServer
from tests.smtp_servers import SmtpServer


def test_writes_one_eml_per_delivery(tmp_path: Path) -> None:
    outbox = make_backend(DeliveryConfig(backend="outbox", outbox_dir=tmp_path / "out"))
    assert isinstance(outbox, OutboxBackend) and isinstance(outbox, Backend)
    emails = [make_email(1), make_email(2)]
    assert outbox.send(emails) == [SendResult("d-0001", "sent"), SendResult("d-0002", "sent")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["d-0001.eml", "d-0002.eml"]
    raw = (tmp_path / "out" / "d-0001.eml").read_bytes()
    assert raw == message_bytes(emails[0])  # the wire form (tests/test_deliver_wire.py)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["X-Digest-Delivery"] == "d-0001"
    outbox.close()


def test_sending_twice_leaves_one_file_the_first(tmp_path: Path) -> None:
    outbox = OutboxBackend(tmp_path)
    first = make_email(1)
    assert outbox.send([first]) == [SendResult("d-0001", "sent")]
    again = outbox.send([make_email(1, subject="changed"), first])
    assert [r.status for r in again] == ["sent", "sent"]
    assert again[0].reason == "already in the outbox"
    assert [p.name for p in tmp_path.iterdir()] == ["d-0001.eml"]  # no temporary files left
    assert outbox.path_for("d-0001").read_bytes() == message_bytes(first)


@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "fsync-each"])
def test_a_batch_is_written_whole_in_order_with_its_bad_ones_apart(
    tmp_path: Path, syncfs: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One call takes a batch (`digest send` hands the outbox a page): each email gets its
    own result in order, a bad one fails alone, one listed twice is written once, and
    nothing temporary is left, with one sync of the file system or an fsync per file."""
    import digest.deliver.outbox as outbox_module

    if not syncfs:
        monkeypatch.setattr(outbox_module, "_SYNCFS", None)
    elif outbox_module._SYNCFS is None:
        pytest.skip("no syncfs(2) here")
    outbox = OutboxBackend(tmp_path)
    emails = [make_email(n) for n in range(1, 6)]
    batch = [*emails[:2], make_email(delivery_id="bad id"), emails[1], *emails[2:]]
    got = outbox.send(batch)
    assert [(r.delivery_id, r.status) for r in got] == [
        ("d-0001", "sent"),
        ("d-0002", "sent"),
        ("bad id", "failed"),
        ("d-0002", "sent"),
        ("d-0003", "sent"),
        ("d-0004", "sent"),
        ("d-0005", "sent"),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"d-000{n}.eml" for n in range(1, 6)]
    assert all(outbox.path_for(e.delivery_id).read_bytes() == message_bytes(e) for e in emails)


def test_unusable_delivery_id_fails_without_writing(tmp_path: Path) -> None:
    outbox = OutboxBackend(tmp_path / "out")
    [result] = outbox.send([make_email(delivery_id="../escape")])
    assert result.status == "failed" and "delivery_id" in result.reason
    assert not (tmp_path / "escape.eml").exists()
    assert not (tmp_path / "out").exists()


def test_unwritable_outbox_is_retry(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the outbox should be")
    [result] = OutboxBackend(blocker).send([make_email()])
    assert result.status == "retry" and "not-a-dir" in result.reason


@pytest.mark.parametrize("name", backend_names())
def test_every_registered_backend_keeps_the_protocol(
    name: str, tmp_path: Path, smtp_server: SmtpServer, sendgrid_api: SendgridServer
) -> None:
    """What `make_backend` builds for each registered name is a `Backend` by that name;
    an empty batch gives no results and touches nothing; `close()` is always safe."""
    config = DeliveryConfig(
        backend=name,
        outbox_dir=tmp_path / "outbox",
        smtp=SmtpConfig(host=smtp_server.host, port=smtp_server.port),
        sendgrid=SendgridConfig(host=sendgrid_api.url),
    )
    backend = make_backend(config, env={"SENDGRID_API_KEY": sendgrid_api.api_key})
    assert isinstance(backend, Backend) and backend.name == name
    assert backend.send([]) == []
    backend.close()
    backend.close()
    assert smtp_server.connections == 0 and sendgrid_api.requests == []
    assert not (tmp_path / "outbox").exists()


def test_unknown_backend_is_a_delivery_error(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match="'pigeon': unknown backend; expected one of"):
        make_backend(DeliveryConfig(backend="pigeon", outbox_dir=tmp_path))
