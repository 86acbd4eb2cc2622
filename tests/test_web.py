"""The reader pages over HTTP: subscribe (double opt-in, CSRF, limits, honeypot, no
enumeration), the live preview, and manage (settings, profiles, pause, last digests).
Every POST goes through the real server on 127.0.0.1 with a cookie jar, as a browser."""

from __future__ import annotations

import email
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.config import Config
from digest.deliver.memory import MemoryBackend
from digest.rank import make_profile
from digest.serve import make_server, serve_in_thread
from digest.store import Store
from digest.subscriptions import subscribe
from digest.tokens import load_secret, make_token

NOW = datetime(2025, 10, 16, 9, tzinfo=UTC)


class Browser:
    """A client that keeps cookies and does not follow redirects (to see them)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect
        )

    def open(self, path: str, data: dict[str, str] | None = None) -> tuple[int, str, dict]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body)
        try:
            with self.opener.open(request, timeout=10) as r:
                return r.status, r.read().decode(), {k.lower(): v for k, v in r.headers.items()}
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), {k.lower(): v for k, v in e.headers.items()}

    def form(self, path: str) -> dict[str, str]:
        """GET a page; its CSRF value (the cookie comes with it)."""
        status, body, _ = self.open(path)
        assert status == 200, body
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', body)
        assert match, body
        return {"csrf": match[1]}


@pytest.fixture
def config(seeded_config: Config, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("DIGEST_SECRET", "test-secret-for-the-web-pages-0123")
    return seeded_config


@pytest.fixture
def base(config: Config, tmp_path: Path) -> Iterator[str]:
    srv = make_server(config, config.store_path, lambda: NOW, port=0, site_dir=tmp_path / "site")
    thread = serve_in_thread(srv)
    try:
        yield srv.url
    finally:
        srv.stop()
        thread.join()


def outbox(config: Config) -> list[email.message.Message]:
    files = sorted(config.delivery.outbox_dir.glob("*.eml"))
    return [email.message_from_bytes(f.read_bytes()) for f in files]


def subscribers(config: Config) -> dict[str, tuple[str, tuple[str, ...]]]:
    with Store(config.store_path) as store:
        return {s.email: (s.status, tuple(p.name for p in s.profiles)) for s in store.subscribers()}


ADA = {
    "email": "Ada@Example.org",
    "keywords": 'speech, "text to speech"',
    "exclude": "",
    "timezone": "Europe/Berlin",
    "send_at": "06:30",
    "frequency": "weekly",
    "website": "",
}


def test_subscribe_mails_a_confirmation_with_a_pasteable_token(base: str, config: Config) -> None:
    browser = Browser(base)
    status, body, headers = browser.open("/subscribe", {**ADA, **browser.form("/subscribe")})
    assert status == 200 and "Check your inbox" in body and headers["cache-control"] == "no-store"
    assert subscribers(config) == {"ada@example.org": ("pending", ("papers",))}
    (message,) = outbox(config)
    assert message["To"] == "ada@example.org"
    text = message.get_payload()[0].get_payload(decode=True).decode()
    link = re.search(r"http\S+/confirm\?token=(\S+)", text)
    assert link
    # The token stands alone on a line of the raw source, whatever the transfer encoding.
    raw = next(config.delivery.outbox_dir.glob("*.eml")).read_text()
    assert f"\n{link[1]}\n" in raw.replace("\r\n", "\n")
    status, body, _ = browser.open(
        f"/confirm?token={link[1]}", browser.form(f"/confirm?token={link[1]}")
    )
    assert status == 200 and subscribers(config)["ada@example.org"][0] == "confirmed"
    with Store(config.store_path) as store:
        ada = store.subscriber_by_email("ada@example.org")
    assert ada and (ada.timezone, ada.send_at, ada.frequency) == (
        "Europe/Berlin",
        "06:30",
        "weekly",
    )


def test_a_known_address_gets_the_same_page_and_its_manage_link(base: str, config: Config) -> None:
    with Store(config.store_path) as store:
        subscribe(
            config, store, "ada@example.org", make_profile("mine", "LoRA"), NOW, confirmed=True
        )
    browser = Browser(base)
    status, body, _ = browser.open("/subscribe", {**ADA, **browser.form("/subscribe")})
    assert status == 200 and "Check your inbox" in body
    assert subscribers(config) == {"ada@example.org": ("confirmed", ("mine",))}  # untouched
    (message,) = outbox(config)
    text = message.get_payload()[0].get_payload(decode=True).decode()
    assert "already gets" in text and "/manage?token=manage." in text


def test_csrf_honeypot_and_bad_input(base: str, config: Config) -> None:
    browser = Browser(base)
    status, body, _ = browser.open("/subscribe", ADA)  # no CSRF value
    assert status == 403 and subscribers(config) == {}
    other = Browser(base)  # another browser's value does not go with this cookie
    status, _, _ = browser.open("/subscribe", {**ADA, **other.form("/subscribe")})
    assert status == 403
    fields = browser.form("/subscribe")
    status, body, _ = browser.open("/subscribe", {**ADA, **fields, "website": "http://spam"})
    assert status == 200 and "Check your inbox" in body
    assert subscribers(config) == {} and outbox(config) == []
    status, body, _ = browser.open("/subscribe", {**ADA, **fields, "timezone": "Mars/Olympus"})
    assert status == 400 and "unknown time zone" in body and "Mars/Olympus" in body
    status, body, _ = browser.open("/subscribe", {**ADA, **fields, "keywords": "!!!, ???"})
    assert status == 400 and "keyword" in body
    status, body, _ = browser.open("/subscribe", {**ADA, **fields, "email": "<script>x@y"})
    assert status == 400 and "<script>" not in body and "&lt;script&gt;" in body
    assert subscribers(config) == {}


def test_rate_limits_per_address_and_per_client(config: Config, tmp_path: Path) -> None:
    mail = MemoryBackend()
    srv = make_server(
        config,
        config.store_path,
        lambda: NOW,
        port=0,
        site_dir=tmp_path / "site",
        open_backend=lambda: mail,
    )
    thread = serve_in_thread(srv)
    try:
        _rate_limits(Browser(srv.url), mail)
    finally:
        srv.stop()
        thread.join()


def _rate_limits(browser: Browser, mail: MemoryBackend) -> None:
    fields = browser.form("/subscribe")
    for _ in range(4):  # the fourth is answered alike, and mails nothing
        status, body, _ = browser.open("/subscribe", {**ADA, **fields})
        assert status == 200 and "Check your inbox" in body
    assert len(mail.sent) == 3
    statuses = [
        browser.open("/subscribe", {**ADA, **fields, "email": f"r{n}@example.org"})[0]
        for n in range(7)
    ]
    assert statuses == [200] * 6 + [429]  # ten sign-ups an hour from one client


def test_live_preview_json(base: str) -> None:
    browser = Browser(base)
    status, body, headers = browser.open("/subscribe/preview?keywords=speech,TTS")
    assert status == 200 and headers["content-type"] == "application/json"
    import json

    data = json.loads(body)
    assert data["error"] == "" and data["items"] and data["window"] == "in the last day"
    assert all(item["why"].startswith("matches") for item in data["items"])
    data = json.loads(browser.open("/subscribe/preview?keywords=")[1])
    assert "keyword" in data["error"] and data["items"] == []


# -- manage ---------------------------------------------------------------------------------


@pytest.fixture
def manage_path(config: Config) -> str:
    with Store(config.store_path) as store:
        sub = subscribe(
            config,
            store,
            "ada@example.org",
            make_profile("speech", "speech, TTS"),
            NOW,
            confirmed=True,
        ).subscriber
    token = make_token(load_secret(config), "manage", sub.id, sub.email, NOW)
    return f"/manage?token={token}"


def test_manage_edits_settings_and_profiles(base: str, config: Config, manage_path: str) -> None:
    browser = Browser(base)
    csrf = browser.form(manage_path)
    form = {
        **csrf,
        "action": "settings",
        "timezone": "Asia/Tokyo",
        "send_at": "21:15",
        "frequency": "weekly",
    }
    status, _, headers = browser.open(manage_path, form)
    assert status == 303 and headers["location"].endswith("&done=settings")
    status, body, _ = browser.open(headers["location"])
    assert status == 200 and "once a week at 21:15 (Asia/Tokyo)" in body and "Saved" in body
    add = {**csrf, "action": "profile", "original": "", "name": "lora", "keywords": "LoRA^2"}
    assert browser.open(manage_path, add)[0] == 303
    edit = {
        **csrf,
        "action": "profile",
        "original": "speech",
        "name": "voice",
        "keywords": "TTS",
        "exclude": "survey",
    }
    assert browser.open(manage_path, edit)[0] == 303
    with Store(config.store_path) as store:
        ada = store.subscriber_by_email("ada@example.org")
    assert ada is not None and [p.name for p in ada.profiles] == ["lora", "voice"]
    assert [k.text for k in ada.profiles[1].exclude] == ["survey"]
    assert browser.open(manage_path, {**csrf, "action": "remove", "name": "lora"})[0] == 303
    status, body, _ = browser.open(manage_path, {**csrf, "action": "remove", "name": "voice"})
    assert status == 400 and "needs one profile" in body  # the last one stays
    status, body, _ = browser.open(manage_path, {**add, "name": "voice"})
    assert status == 400 and "already" in body
    assert browser.open(manage_path, {"action": "pause"})[0] == 403  # no CSRF value


def test_pause_resume_and_last_digests(base: str, config: Config, manage_path: str) -> None:
    from digest import pipeline

    browser = Browser(base)
    csrf = browser.form(manage_path)
    assert browser.open(manage_path, {**csrf, "action": "pause"})[0] == 303
    assert subscribers(config)["ada@example.org"][0] == "paused"
    backend = MemoryBackend()
    with Store(config.store_path) as store:
        report = pipeline.send_due(config, store, backend, NOW + timedelta(days=1))
    assert backend.sent == []  # paused: no digest
    assert browser.open(manage_path, {**csrf, "action": "resume"})[0] == 303
    with Store(config.store_path) as store:
        report = pipeline.send_due(config, store, backend, NOW + timedelta(hours=1))
    assert len(backend.sent) == 1, report
    status, body, _ = browser.open(manage_path)
    assert status == 200 and "Your last digests" in body and "2025-10-16" in body
    assert body.count("<li>") >= 1 and "Pause my digests" in body


def test_the_archive_index_has_a_subscribe_form_when_public(
    base: str, config: Config, tmp_path: Path
) -> None:
    from dataclasses import replace

    from digest.pipeline import publish

    public = replace(config, delivery=replace(config.delivery, public_url="https://p.example.org"))
    with Store(config.store_path) as store:
        publish(public, store, NOW, out_dir=tmp_path / "public")
        publish(config, store, NOW, out_dir=tmp_path / "local")
    index = (tmp_path / "public" / "index.html").read_text()
    assert '<form class="subscribe" method="get" action="https://p.example.org/subscribe">' in index
    assert 'class="subscribe"' not in (tmp_path / "local" / "index.html").read_text()
    # What the form sends: the subscribe page with the address filled in.
    status, body, _ = Browser(base).open("/subscribe?email=ada%40example.org")
    assert status == 200 and 'value="ada@example.org"' in body
