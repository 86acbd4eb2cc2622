"""Subscribers in a real store: validation, double opt-in tokens, unsubscribe, profiles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import Config, load_config
from digest.errors import SubscriptionError
from digest.model import Keyword
from digest.rank import make_profile
from digest.store import Store
from digest.subscriptions import confirm, normalize_email, subscribe, unsubscribe
from digest.tokens import load_secret, make_token

NOW = datetime(2025, 12, 1, 9, tzinfo=UTC)
SPEC = make_profile("llm", ("LoRA", '"video diffusion"^2', "quantization"), ("survey",))


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("DIGEST_SECRET", "test-secret-0123456789abcdef-0123")
    return load_config(tmp_path / "config.toml")


def test_subscribe_is_pending_until_confirmed(cfg: Config, store: Store) -> None:
    result = subscribe(
        cfg, store, "  Ada@Example.COM ", SPEC, NOW, timezone="Europe/Berlin", send_at="06:30"
    )
    assert result.created and result.subscriber.status == "pending"
    assert result.subscriber.email == "ada@example.com"
    assert result.confirm_link.startswith("http://127.0.0.1:8000/confirm?token=confirm.")
    token = result.confirm_link.split("token=")[1]
    sub = confirm(cfg, store, token, NOW + timedelta(hours=1))
    assert sub.status == "confirmed" and sub.timezone == "Europe/Berlin" and sub.send_at == "06:30"
    assert sub.profiles == (SPEC,)
    assert confirm(cfg, store, token, NOW + timedelta(hours=2)).status == "confirmed"  # idempotent


def test_one_row_per_address_and_profile_editing(cfg: Config, store: Store) -> None:
    subscribe(cfg, store, "ada@example.com", SPEC, NOW, confirmed=True)
    other = make_profile("speech", ("TTS", "ASR"))
    sub = subscribe(cfg, store, "ADA@example.com", other, NOW).subscriber
    assert len(store.subscribers()) == 1 and [p.name for p in sub.profiles] == ["llm", "speech"]
    changed = make_profile("llm", ("distillation",))
    sub = subscribe(cfg, store, "ada@example.com", changed, NOW).subscriber
    assert sub.profiles[0].keywords == (Keyword("distillation"),) and sub.status == "confirmed"
    sub, _ = unsubscribe(cfg, store, "ada@example.com", NOW, profile="speech")
    assert [p.name for p in sub.profiles] == ["llm"] and sub.status == "confirmed"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"address": "not-an-address"}, "is not a valid email address"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"send_at": "7am"}, "use 24-hour HH:MM"),
        ({"send_at": "07:00\n"}, "use 24-hour HH:MM"),  # `$` would match before the newline
        ({"frequency": "hourly"}, "use daily or weekly"),
    ],
)
def test_bad_input_is_refused_and_nothing_stored(
    cfg: Config, store: Store, kwargs: dict, message: str
) -> None:
    address = kwargs.pop("address", "ada@example.com")
    with pytest.raises(SubscriptionError, match=message):
        subscribe(cfg, store, address, SPEC, NOW, **kwargs)
    assert store.subscribers() == []


def test_a_stored_profile_comes_back_parsed_as_it_was_typed(cfg: Config, store: Store) -> None:
    sub = subscribe(cfg, store, "ada@example.com", SPEC, NOW, confirmed=True).subscriber
    (profile,) = sub.profiles
    assert profile == SPEC and profile.keywords[1] == Keyword("video diffusion", True, 2.0)
    assert profile.max_items is None  # follows [ranking] default_max_items


def test_unsearchable_profile_is_refused_at_the_edge(tmp_path: Path) -> None:
    db = tmp_path / "var" / "digest.sqlite3"
    result = CliRunner().invoke(
        cli, ["--db", str(db), "subscribe", "ada@example.com", "-k", "-survey"]
    )
    assert result.exit_code == 2
    assert "no keyword to search for" in result.output and "Traceback" not in result.output
    with Store(db) as store:
        assert store.subscribers() == []


def test_tokens_cannot_act_on_another_subscriber(cfg: Config, store: Store) -> None:
    ada = subscribe(cfg, store, "ada@example.com", SPEC, NOW, confirmed=True).subscriber
    bob = subscribe(cfg, store, "bob@example.com", SPEC, NOW, confirmed=True).subscriber
    secret = load_secret(cfg)
    ada_token = make_token(secret, "unsubscribe", ada.id, ada.email, NOW)
    forged = ada_token.replace(f".{ada.id}.", f".{bob.id}.", 1)
    with pytest.raises(SubscriptionError, match="not valid"):
        unsubscribe(cfg, store, forged, NOW)
    with pytest.raises(SubscriptionError, match="not valid or has expired"):
        confirm(cfg, store, ada_token, NOW)  # wrong purpose
    wrong_secret = make_token(b"other", "unsubscribe", ada.id, ada.email, NOW)
    with pytest.raises(SubscriptionError, match="not valid"):
        unsubscribe(cfg, store, wrong_secret, NOW)
    assert {s.status for s in store.subscribers()} == {"confirmed"}
    sub, changed = unsubscribe(cfg, store, ada_token, NOW)
    assert (sub.email, sub.status, changed) == ("ada@example.com", "unsubscribed", True)
    assert unsubscribe(cfg, store, ada_token, NOW)[1] is False
    assert store.subscriber(bob.id).status == "confirmed"  # type: ignore[union-attr]


def test_confirm_tokens_expire(cfg: Config, store: Store) -> None:
    link = subscribe(cfg, store, "ada@example.com", SPEC, NOW).confirm_link
    with pytest.raises(SubscriptionError, match="not valid or has expired"):
        confirm(cfg, store, link.split("token=")[1], NOW + timedelta(days=8))


def test_secret_file_is_created_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    cfg = load_config(tmp_path / "config.toml")
    first = load_secret(cfg)
    secret_file = cfg.store_path.parent / "secret"
    assert load_secret(cfg) == first and len(first) == 64
    assert secret_file.stat().st_mode & 0o777 == 0o600


def test_normalize_email() -> None:
    assert normalize_email("a.b@Example.org") == "a.b@example.org"


def test_a_pending_reader_adding_a_profile_gets_no_second_confirmation(
    cfg: Config, store: Store
) -> None:
    first = subscribe(cfg, store, "ada@example.com", SPEC, NOW)
    assert first.confirm_link
    other = make_profile("speech", ("TTS",))
    added = subscribe(cfg, store, "ada@example.com", other, NOW + timedelta(hours=1))
    assert added.confirm_link == "" and len(added.subscriber.profiles) == 2
    again = subscribe(cfg, store, "ada@example.com", other, NOW + timedelta(hours=2))
    assert again.confirm_link  # the same request again: the link is sent again
    late = make_profile("late", ("ASR",))
    expired = subscribe(cfg, store, "ada@example.com", late, NOW + timedelta(days=8))
    assert expired.confirm_link  # the first link no longer works


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.replace(".", ".0", 1),  # a leading zero on the id
        lambda t: t.replace(".", ".+", 1),
        lambda t: t.replace(".", "..", 1),
        lambda t: t.upper(),
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),
    ],
)
def test_only_the_canonical_spelling_of_a_token_works(
    cfg: Config, store: Store, change: Callable[[str], str]
) -> None:
    from digest.tokens import INVALID, parse_token

    ada = subscribe(cfg, store, "ada@example.com", SPEC, NOW, confirmed=True).subscriber
    token = make_token(load_secret(cfg), "unsubscribe", ada.id, ada.email, NOW)
    assert parse_token(token, "unsubscribe").subscriber_id == ada.id
    with pytest.raises(SubscriptionError) as caught:
        unsubscribe(cfg, store, change(token), NOW)
    assert str(caught.value) == INVALID


def test_every_bad_token_gets_the_same_words(cfg: Config, store: Store) -> None:
    """Fake subscriber ids, forged signatures and expired links look alike."""
    from digest.tokens import INVALID

    ada = subscribe(cfg, store, "ada@example.com", SPEC, NOW, confirmed=True).subscriber
    secret = load_secret(cfg)
    tokens = [
        make_token(secret, "unsubscribe", 999, "nobody@example.com", NOW),  # no such reader
        make_token(b"x" * 32, "unsubscribe", ada.id, ada.email, NOW),  # forged
        make_token(secret, "confirm", ada.id, ada.email, NOW),  # another purpose
        "garbage",
    ]
    messages = set()
    for token in tokens:
        with pytest.raises(SubscriptionError) as caught:
            unsubscribe(cfg, store, token, NOW)
        messages.add(str(caught.value))
    with pytest.raises(SubscriptionError) as caught:
        confirm(
            cfg,
            store,
            make_token(secret, "confirm", ada.id, ada.email, NOW),
            NOW + timedelta(days=8),
        )
    messages.add(str(caught.value))
    assert messages == {INVALID}
