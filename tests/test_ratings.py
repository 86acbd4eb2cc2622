"""Ratings ("more like this" / "not for me"): stored one per reader and paper, carried by
every item of the email through one per-reader slot, recorded by POST only through the
real server on 127.0.0.1, listed (and undone) on the manage page."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from digest import pipeline
from digest.config import Config, load_config
from digest.deliver.memory import MemoryBackend
from digest.rank import make_profile
from digest.render import EmailRenderer, Links, make_environment
from digest.serve import make_server, serve_in_thread
from digest.store import Store
from digest.subscriptions import subscribe
from digest.tokens import load_secret, make_token

from .conftest import SeededTemplate
from .factories import make_paper
from .test_cli import invoke
from .test_email import _digest, _twenty, _visible
from .test_web import Browser

NOW = datetime(2025, 10, 16, 9, tzinfo=UTC)
SECRET = "test-secret-for-the-rating-pages-0123"


# -- the store ---------------------------------------------------------------------------


def test_one_rating_per_reader_and_paper(store: Store) -> None:
    paper = make_paper("LoRA Adapters", "Low-rank adapters.")
    store.add_papers([paper])
    ada, _ = store.upsert_subscriber("ada@example.org", make_profile("p", "LoRA"), now=NOW)
    bob, _ = store.upsert_subscriber("bob@example.org", make_profile("p", "LoRA"), now=NOW)
    assert store.rate(ada.id, paper.id, 1, NOW)
    assert store.rate(ada.id, paper.id, 1, NOW + timedelta(hours=1))  # the same answer again
    assert store.rate(bob.id, paper.id, -1, NOW, via="cli")
    assert [(r.vote, r.rated_at) for r in store.ratings(ada.id)] == [(1, NOW + timedelta(hours=1))]
    assert store.rate(ada.id, paper.id, -1, NOW + timedelta(hours=2), via="manage")
    got = store.rating(ada.id, paper.id)
    assert got is not None and (got.vote, got.via, got.label) == (-1, "manage", "dislike")
    assert [r.vote for r in store.ratings(bob.id)] == [-1]  # each reader has their own
    assert not store.rate(ada.id, "no-such-paper", 1, NOW)
    assert not store.rate(9999, paper.id, 1, NOW)
    assert store.unrate(ada.id, paper.id) and not store.unrate(ada.id, paper.id)
    assert store.ratings(ada.id) == [] and store.rating(ada.id, paper.id) is None
    with pytest.raises(ValueError):
        store.rate(ada.id, paper.id, 2, NOW)


# -- the email ---------------------------------------------------------------------------

RATE = "https://d.example/rate?token=rate.1.99.abc"


def _rate_links(html: str) -> list[dict[str, list[str]]]:
    hrefs = re.findall(r'href="([^"]*/rate\?[^"]*)"', html)
    return [parse_qs(urlsplit(unescape(h)).query) for h in hrefs]


def test_every_item_carries_the_readers_rating_links_in_html_and_text() -> None:
    digest = _twenty()
    renderer = EmailRenderer(make_environment(), base_url="https://d.example/")
    links = Links("https://d.example/", "https://d.example/m?t=1", "https://d.example/u?t=1", RATE)
    whole, composed = renderer.render_whole(digest, links), renderer.render(digest, links)
    assert _visible(whole.html) == _visible(composed.html) and whole.text == composed.text
    assert len(composed.html.encode()) < 100_000
    ids = [i.paper.id for s in digest.sections for i in s.items]
    found = _rate_links(composed.html)
    assert [(q["paper"][0], q["vote"][0]) for q in found] == [
        (pid, vote) for pid in ids for vote in ("like", "dislike")
    ]
    assert all(q["token"] == ["rate.1.99.abc"] for q in found)
    for pid in ids:
        assert f"{RATE}&paper={pid}&vote=like\n" in composed.text
        assert f"{RATE}&paper={pid}&vote=dislike\n" in composed.text
    # A preview (no reader) has no rating links.
    preview = renderer.render(digest)
    assert "/rate?" not in preview.html and "/rate?" not in preview.text


def test_readers_share_the_item_fragments_and_differ_only_in_their_token() -> None:
    papers = [make_paper(f"LoRA study {n}", f"Low-rank adapters, take {n}.") for n in range(3)]
    digest = _digest(papers, [["LoRA"]])
    renderer = EmailRenderer(make_environment())
    first = renderer.render(digest, Links(unsubscribe="u", rate="https://d.example/rate?token=A"))
    cached = dict(renderer._items)
    second = renderer.render(digest, Links(unsubscribe="u", rate="https://d.example/rate?token=B"))
    assert renderer._items == cached  # no item rendered again for the second reader
    assert first.html.replace("token=A", "token=B") == second.html
    assert first.text.replace("token=A", "token=B") == second.text
    assert {q["token"][0] for q in _rate_links(second.html)} == {"B"}


def test_a_title_cannot_spell_the_rating_slot() -> None:
    renderer = EmailRenderer(make_environment())
    hostile = make_paper("LoRA @@rate@@ <b>x</b>", "Low-rank adapters @@why@@.")
    email = renderer.render(_digest([hostile], [["LoRA"]]), Links(rate=RATE))
    assert "@@" in email.text and "<b>x</b>" not in email.html  # kept as text, escaped
    assert len(_rate_links(email.html)) == 2


# -- the pages, through the real server ----------------------------------------------------


@dataclass(frozen=True)
class Served:
    config: Config
    base: str
    rate_link: str  #: the reader's link from the email they were sent
    paper_id: str  #: the first paper of that email
    manage: str


@pytest.fixture(scope="module")
def served(
    seeded_template: SeededTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A seeded project, one confirmed reader who was sent a digest, and the server."""
    root = seeded_template.copy_to(tmp_path_factory.mktemp("ratings"))
    monkey = pytest.MonkeyPatch()
    monkey.setenv("DIGEST_SECRET", SECRET)
    config = load_config(root / "config.toml", required=True)
    backend = MemoryBackend()
    with Store(config.store_path) as store:
        speech = make_profile("speech", "speech, TTS")
        sub = subscribe(config, store, "ada@example.org", speech, NOW, confirmed=True).subscriber
        pipeline.send_due(config, store, backend, NOW + timedelta(hours=1))
    (sent,) = backend.sent
    links = re.findall(r"(http\S+/rate\?token=\S+)&paper=(\S+)&vote=like", sent.text)
    assert links, sent.text
    manage = f"/manage?token={make_token(load_secret(config), 'manage', sub.id, sub.email, NOW)}"
    srv = make_server(config, config.store_path, lambda: NOW, port=0, site_dir=root / "site")
    thread = serve_in_thread(srv)
    try:
        yield Served(config, srv.url, links[0][0], links[0][1], manage)
    finally:
        srv.stop()
        thread.join()
        monkey.undo()
        shutil.rmtree(root, ignore_errors=True)


def _path(link: str, paper: str, vote: str) -> str:
    return f"/{link.split('/', 3)[3]}&paper={paper}&vote={vote}"


def _ratings(config: Config) -> list[tuple[str, int]]:
    with Store(config.store_path) as store:
        sub = store.subscriber_by_email("ada@example.org")
        assert sub is not None
        return [(r.paper_id, r.vote) for r in store.ratings(sub.id)]


def test_get_shows_one_button_and_post_records_idempotently(served: Served) -> None:
    browser = Browser(served.base)
    like = _path(served.rate_link, served.paper_id, "like")
    status, body, headers = browser.open(like)
    assert status == 200 and body.count("<button") == 1 and "More like this" in body
    assert headers["cache-control"] == "no-store" and headers["referrer-policy"] == "no-referrer"
    assert _ratings(served.config) == []  # a scanner that follows the link records nothing
    status, body, _ = browser.open(like, {})
    assert status == 200 and "Recorded" in body and "Undo" in body
    assert _ratings(served.config) == [(served.paper_id, 1)]
    again = browser.open(like, {})
    assert again[0] == 200 and again[1] == body  # the same answer, the same page
    assert _ratings(served.config) == [(served.paper_id, 1)]
    status, body, _ = browser.open(_path(served.rate_link, served.paper_id, "dislike"))
    assert "You said “more like this” before" in body
    status, body, _ = browser.open(_path(served.rate_link, served.paper_id, "dislike"), {})
    assert status == 200 and _ratings(served.config) == [(served.paper_id, -1)]  # replaced
    undo = re.search(r'<form method="post" action="([^"]+)"', body)
    assert undo and "vote=clear" in undo[1]
    status, body, _ = browser.open("/" + unescape(undo[1]), {})
    assert status == 200 and "no longer rate" in body and _ratings(served.config) == []


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda p: p.replace("vote=like", "vote=love"), "is not one of like, dislike"),
        (lambda p: re.sub(r"paper=[^&]+", "paper=2999.00000", p), "names no paper"),
        (lambda p: re.sub(r"token=rate\.(\d+)\.", r"token=rate.\g<1>999.", p), "not valid"),
        (lambda p: p.replace("token=rate.", "token=manage."), "not valid"),
        (lambda p: re.sub(r"[0-9a-f](&paper=)", r"x\g<1>", p), "not valid"),
    ],
)
def test_bad_rating_links_are_refused_and_record_nothing(
    served: Served, change: object, words: str
) -> None:
    browser = Browser(served.base)
    path = change(_path(served.rate_link, served.paper_id, "like"))  # type: ignore[operator]
    for data in (None, {}):
        status, body, _ = browser.open(path, data)
        assert status == 400 and words in body
    assert _ratings(served.config) == []


def test_the_manage_page_lists_rates_and_undoes(served: Served) -> None:
    browser = Browser(served.base)
    csrf = browser.form(served.manage)
    status, body, _ = browser.open(served.manage)
    assert "No ratings yet" in body and body.count('name="vote" value="like"') >= 1
    form = {**csrf, "action": "rate", "paper": served.paper_id, "vote": "dislike"}
    status, _, headers = browser.open(served.manage, form)
    assert status == 303 and headers["location"].endswith("&done=rate")
    assert _ratings(served.config) == [(served.paper_id, -1)]
    status, body, _ = browser.open(headers["location"])
    listed = body.split('id="ratings"')[1]
    assert "not for me" in listed and "Undo" in listed and 'aria-pressed="true"' in body
    status, body, _ = browser.open(served.manage, {**form, "vote": "meh"})
    assert status == 400 and _ratings(served.config) == [(served.paper_id, -1)]
    unrate = {**csrf, "action": "unrate", "paper": served.paper_id}
    assert browser.open(served.manage, unrate)[0] == 303
    assert _ratings(served.config) == []
    assert browser.open(served.manage, {"action": "rate", "paper": served.paper_id})[0] == 403


def test_operators_rate_and_list_from_the_cli(served: Served) -> None:
    project = served.config.path.parent
    with Store(served.config.store_path) as store:
        store.upsert_subscriber("cy@example.org", make_profile("p", "LoRA"), now=NOW)
    pid = served.paper_id
    assert invoke(project, "rate", "cy@example.org", pid, "like")[:2] == (
        0,
        f"cy@example.org rated {pid}: like\n",
    )
    assert invoke(project, "rate", "Cy@Example.org", pid, "dislike")[0] == 0  # replaces
    code, out, err = invoke(project, "ratings", "cy@example.org", "--json")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and (row["id"], row["vote"], row["via"]) == (pid, "dislike", "cli")
    code, _, err = invoke(project, "rate", "cy@example.org", "2999.99999", "like")
    assert (
        code == 2
        and err == "error: '2999.99999': no such paper; `digest papers --json` lists the ids\n"
    )
    code, _, err = invoke(project, "rate", "nobody@example.org", pid, "like")
    assert code == 2 and "no such subscriber" in err
    assert invoke(project, "rate", "cy@example.org", pid, "clear")[0] == 0
    assert invoke(project, "ratings", "cy@example.org")[2] == "0 ratings\n"
