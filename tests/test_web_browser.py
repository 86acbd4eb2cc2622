"""A reader's journey through `digest serve` in headless Chromium: subscribe (with the live
preview), confirm, manage (pause), rate, unsubscribe; axe-core on every page, light and dark."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest.config import Config
from digest.serve import make_server, serve_in_thread
from digest.store import Store

from .conftest import CHROMIUM, axe_options

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
axe_module = pytest.importorskip("axe_playwright_python.sync_playwright", reason="no axe-core")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium)", allow_module_level=True)

NOW = datetime(2025, 10, 16, 9, tzinfo=UTC)
TIMEOUT_MS = 15_000
AXE = axe_module.Axe()


@pytest.fixture
def served(seeded_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DIGEST_SECRET", "test-secret-for-the-browser-0123456")
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><html lang=en><title>a</title><h1>a</h1>")
    srv = make_server(seeded_config, seeded_config.store_path, lambda: NOW, port=0, site_dir=site)
    thread = serve_in_thread(srv)
    try:
        yield srv.url
    finally:
        srv.stop()
        thread.join()


def serious(page: Any, schemes: tuple[str, ...] = ("light",)) -> list[str]:
    """axe-core's serious and critical violations on the page, in these colour schemes
    (one stylesheet serves every page: both schemes on the two richest pages)."""
    found = []
    for scheme in schemes:
        page.emulate_media(color_scheme=scheme)
        for v in AXE.run(page, options=axe_options(scheme)).response["violations"]:
            if v["impact"] in ("serious", "critical"):
                found.append(f"{scheme}: {v['id']}: {[n['target'] for n in v['nodes']]}")
    return found


def test_a_reader_subscribes_confirms_pauses_and_leaves(
    served: str, browser: Any, seeded_config: Config, tmp_path: Path
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    checked: dict[str, list[str]] = {}
    try:
        page.goto(served + "/subscribe")
        assert page.locator("html").get_attribute("lang") == "en"
        assert (
            page.locator("#timezone").input_value() == "UTC"
            or page.locator("#timezone").input_value()
        )  # the browser's zone, filled in by the page
        page.locator("#keywords").press_sequentially("speech, TTS", delay=5)
        page.locator("#preview[data-query='speech, TTS']").wait_for(state="attached")
        assert page.locator("#preview-items li").count() > 0
        checked["subscribe"] = serious(page, ("light", "dark"))
        page.screenshot(path=str(tmp_path / "subscribe.png"), full_page=True)
        page.locator("#email").fill("ada@example.org")
        page.locator("#timezone").fill("Europe/Berlin")
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_selector("h1:has-text('Check your inbox')")
        checked["sent"] = serious(page)

        (eml,) = seeded_config.delivery.outbox_dir.glob("*.eml")
        token = re.search(r"\n(confirm\.[0-9]+\.[0-9]+\.[0-9a-f]{40})\n", eml.read_text())
        assert token
        page.goto(f"{served}/confirm?token={token[1]}")
        checked["confirm"] = serious(page)
        page.get_by_role("button", name="Confirm").click()
        page.wait_for_selector("h1:has-text('Subscribed')")

        with Store(seeded_config.store_path) as store:
            ada = store.subscriber_by_email("ada@example.org")
        assert ada is not None and (ada.status, ada.timezone) == ("confirmed", "Europe/Berlin")
        from digest.tokens import load_secret, make_token

        token = make_token(load_secret(seeded_config), "manage", ada.id, ada.email, NOW)
        page.goto(f"{served}/manage?token={token}")
        checked["manage"] = serious(page, ("light", "dark"))
        page.get_by_role("button", name="Pause my digests").click()
        page.wait_for_selector("#done")
        assert "Resume my digests" in page.content()
        checked["manage-paused"] = serious(page)
        page.screenshot(path=str(tmp_path / "manage.png"), full_page=True)

        # A rating link from the email: one button, then the manage page lists it.
        with Store(seeded_config.store_path) as store:
            paper = store.papers()[0]
        rate = make_token(load_secret(seeded_config), "rate", ada.id, ada.email, NOW)
        page.goto(f"{served}/rate?token={rate}&paper={paper.id}&vote=like")
        checked["rate"] = serious(page)
        page.get_by_role("button", name="More like this").click()
        page.wait_for_selector("h1:has-text('Thank you')")
        checked["rated"] = serious(page)
        page.goto(f"{served}/manage?token={token}#ratings")
        assert page.locator("ul.ratings li").count() == 1
        checked["manage-ratings"] = serious(page, ("light", "dark"))

        unsubscribe = page.get_by_role("link", name="Unsubscribe").get_attribute("href")
        page.goto(served + "/" + str(unsubscribe).rpartition("/")[2])  # public_url: this one
        checked["unsubscribe"] = serious(page)
        page.get_by_role("button", name="Unsubscribe").click()
        page.wait_for_selector("h1:has-text('Unsubscribed')")
        checked["unsubscribed"] = serious(page)
        page.goto(served + "/nothing-here")
        checked["404"] = serious(page)
        page.goto(served + "/preview")
        checked["400"] = serious(page)
        page.goto(served + "/preview?keywords=speech,TTS&limit=3")  # the email's HTML
        checked["preview"] = serious(page)
    finally:
        context.close()
    assert errors == []
    assert checked == {name: [] for name in checked}
    with Store(seeded_config.store_path) as store:
        assert store.subscribers()[0].status == "unsubscribed"
