"""The published archive in a real headless Chromium: search works from file:// and over
HTTP, a hostile title shows as text without running anything, and axe-core finds no
serious or critical violation on the archive's pages or in the email, light or dark."""

from __future__ import annotations

import functools
import http.server
import itertools
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest.config import Config, load_config
from digest.model import Paper
from digest.pipeline import build_digest, publish
from digest.render import EmailRenderer, Links, make_environment
from digest.store import Store

from .conftest import CHROMIUM, SeededTemplate, axe_options
from .factories import linked_paper, make_paper

# Skip before building the site when there is no browser to show it in.
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium)", allow_module_level=True)

TIMEOUT_MS = 15_000
axe_module = pytest.importorskip("axe_playwright_python.sync_playwright", reason="no axe-core")
HOSTILE = '<script>alert(1)</script> "><img src=x onerror=alert(2)> {{ 7*7 }} zebrafish'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, seeded_template: SeededTemplate) -> Path:
    root = seeded_template.copy_to(tmp_path_factory.mktemp("browser"))
    config: Config = load_config(root / "config.toml", required=True)
    hostile = make_paper(
        HOSTILE,
        "</textarea><script>alert(3)</script> A speech paper about zebrafish.",
        seen=datetime(2025, 12, 30, tzinfo=UTC),
    )
    # No profile picks it and it has an arXiv page: no permalink, an entry on its day page.
    unpicked = make_paper(
        "Counting barnacles on ship hulls",
        "Barnacles, counted by hand and by camera.",
        seen=datetime(2025, 12, 30, tzinfo=UTC),
        arxiv_id="2512.00042",
    )
    with Store(config.store_path) as store:
        store.add_papers([hostile, unpicked, LINKED])
        publish(config, store, datetime(2026, 1, 1, tzinfo=UTC), out_dir=root / "site")
        # The email of that day, beside the site, for axe (file:// like the pages).
        digest = build_digest(
            config, store.papers(), config.profiles, datetime(2025, 12, 30, 9, tzinfo=UTC)
        )
    links = Links("https://d.example/", "https://d.example/m?t=1", "https://d.example/u?t=1")
    email = EmailRenderer(make_environment(), base_url="https://d.example/").render(digest, links)
    (root / "site" / "email.html").write_text(email.html, encoding="utf-8")
    return root / "site"


#: A picked paper with every kind of link, names and a summary (its day: 2025-12-29).
LINKED = linked_paper(
    "Streaming text-to-speech on tiny devices",
    "We count birds. Our TTS model speaks on a phone, and its speech is clear.",
    "2512.00077",
    id="2512.00077",
    seen=datetime(2025, 12, 29, tzinfo=UTC),
)


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context()  # type: ignore[attr-defined]
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.errors = []  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    try:
        yield pg
    finally:
        context.close()


def search(pg: object, query: str) -> list[str]:
    """Type a query into the index page's search box; the result titles."""
    box = pg.locator("#search-input")  # type: ignore[attr-defined]
    box.click()
    box.fill("")
    box.press_sequentially(query, delay=10)
    pg.wait_for_function(  # type: ignore[attr-defined]
        "q => document.getElementById('search-results').dataset.query === q", arg=query
    )
    return pg.locator("#search-results li a.title").all_inner_texts()  # type: ignore[attr-defined]


def test_search_from_file_url(site: Path, page: object, tmp_path: Path) -> None:
    page.goto((site / "index.html").as_uri())  # type: ignore[attr-defined]
    titles = search(page, "randlora")
    assert titles == ["RandLoRA: Full-rank parameter-efficient fine-tuning of large models"]
    # Two words: both must occur (in the title, or twice in the abstract): "diffusion"
    # in this title, "video" in its abstract; ReVideo's abstract says "diffusion" once.
    titles = search(page, "video diffusion")
    assert (
        "VFX Creator: Animated Visual Effect Generation with Controllable Diffusion Transformer"
        in titles
    )
    assert "ReVideo: Remake a Video with Motion and Content Control" not in titles
    page.screenshot(path=str(tmp_path / "search-file.png"), full_page=False)  # type: ignore[attr-defined]
    page.locator("#search-results li a.title").first.click()  # type: ignore[attr-defined]
    page.wait_for_url("**/papers/*.html")  # type: ignore[attr-defined]
    assert page.locator("h1").inner_text() == titles[0]  # type: ignore[attr-defined]
    assert page.errors == [] and page.dialogs == []  # type: ignore[attr-defined]


def test_hostile_title_is_text_and_runs_nothing(site: Path, page: object, tmp_path: Path) -> None:
    page.goto((site / "index.html").as_uri())  # type: ignore[attr-defined]
    titles = search(page, "zebrafish")
    assert titles == [HOSTILE]
    assert page.locator("#search-results img").count() == 0  # type: ignore[attr-defined]
    page.screenshot(path=str(tmp_path / "hostile-search.png"))  # type: ignore[attr-defined]
    page.goto((site / "days" / "2025-12-30.html").as_uri())  # type: ignore[attr-defined]
    assert HOSTILE in page.locator("main").inner_text()  # type: ignore[attr-defined]
    assert page.locator("main img, main script").count() == 0  # type: ignore[attr-defined]
    page.locator("main a.title").first.click()  # type: ignore[attr-defined]
    assert page.locator("h1").inner_text() == HOSTILE  # type: ignore[attr-defined]
    page.screenshot(path=str(tmp_path / "hostile-paper.png"), full_page=True)  # type: ignore[attr-defined]
    assert page.dialogs == [] and page.errors == []  # type: ignore[attr-defined]


def test_a_paper_without_permalink_is_found_on_its_day_page(site: Path, page: object) -> None:
    page.goto((site / "index.html").as_uri())  # type: ignore[attr-defined]
    assert search(page, "barnacles") == ["Counting barnacles on ship hulls"]
    page.locator("#search-results li a.title").first.click()  # type: ignore[attr-defined]
    page.wait_for_url("**/days/2025-12-30.html#p-*")  # type: ignore[attr-defined]
    entry = page.locator(":target")  # type: ignore[attr-defined]
    assert entry.locator("a.title").inner_text() == "Counting barnacles on ship hulls"
    assert entry.locator("a.title").get_attribute("href") == "https://arxiv.org/abs/2512.00042"
    assert page.errors == [] and page.dialogs == []  # type: ignore[attr-defined]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    """The browser drops its idle keep-alive connections when its context closes: a reset
    then is no error of the page under test (any other exception is still printed)."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_search_over_http_and_from_another_page(served: str, page: object, tmp_path: Path) -> None:
    # The header search box of a day page submits to the index, which runs the query.
    page.goto(served + "days/2025-12-26.html")  # type: ignore[attr-defined]
    box = page.locator("input[name=q]")  # type: ignore[attr-defined]
    box.fill("RandLoRA")
    box.press("Enter")
    page.wait_for_url("**/index.html?q=RandLoRA")  # type: ignore[attr-defined]
    results = page.locator("#search-results li a.title")  # type: ignore[attr-defined]
    results.first.wait_for(state="visible")
    assert results.all_inner_texts() == [
        "RandLoRA: Full-rank parameter-efficient fine-tuning of large models"
    ]
    page.screenshot(path=str(tmp_path / "search-http.png"))  # type: ignore[attr-defined]
    status = page.locator("#search-status").inner_text()  # type: ignore[attr-defined]
    assert status.startswith("1 paper matches")
    assert page.errors == [] and page.dialogs == []  # type: ignore[attr-defined]


def _papers(config: Config) -> list[Paper]:
    with Store(config.store_path) as store:
        return store.papers()


def _paper_features(config: Config) -> list[tuple[str, set[str]]]:
    """(title as shown, features) of every published paper, as `digest.rank.find` reads it."""
    from digest.publish.names import plain
    from digest.rank.analyzer import analyzer_for
    from digest.rank.find import search_terms

    analyzer = analyzer_for(config.synonyms or None)
    return [
        (
            plain(p.title).strip(),
            search_terms(p, analyzer),
        )
        for p in _papers(config)
    ]


#: What readers type: words that are substrings of others, hyphen/space/solid spellings,
#: plurals, acronyms and their expansions, phrases, alternatives and exclusions.
QUERIES = [
    "constructor",  # a name every JavaScript object inherits
    "speech, - survey",  # a spaced exclusion
    "lora",
    "LoRA",
    "low-rank adaptation",
    "fine-tuning",
    "fine tuning",
    "finetuning",
    "finetunes",
    "video diffusion",
    '"video diffusion"',
    "LLMs",
    "large language models",
    "diffusion models, speech",
    "speech -recognition",
    "text-to-speech",
    "exploration",
    "transformers",
    "model",
    "the",
    "agent^2",
    "Met^2Net",
    "zebrafish",
    "state of the art",
]


#: Types each query into the search box (the form's submit, as Enter does), clicks "More
#: results" until every month is searched, and gives each query's count, titles and the
#: clicks it took. A wait that sees nothing change for 20 s fails the test (no hang).
ALL_RESULTS_JS = """async (queries) => {
  const input = document.getElementById("search-input");
  const list = document.getElementById("search-results");
  const more = document.getElementById("search-more");
  const until = (ok) => new Promise((resolve, reject) => {
    if (ok()) { resolve(); return; }
    const watch = new MutationObserver(() => {
      if (ok()) { watch.disconnect(); clearTimeout(stuck); resolve(); }
    });
    const stuck = setTimeout(() => { watch.disconnect(); reject(new Error("no change")); }, 20000);
    watch.observe(list, { attributes: true });
  });
  const out = {};
  for (const q of queries) {
    input.value = q;
    input.form.requestSubmit();
    await until(() => list.dataset.query === q);
    let pages = 0;
    while (list.dataset.complete !== "1" || !more.hidden) {
      const shows = list.dataset.shows;
      more.click();
      await until(() => list.dataset.shows !== shows);
      pages += 1;
    }
    const titles = Array.from(list.querySelectorAll("li a.title"), (a) => a.innerText);
    out[q] = { count: Number(list.dataset.count), titles: titles, pages: pages };
  }
  return out;
}"""


def test_search_finds_what_the_ranker_matches(site: Path, page: Any) -> None:
    """Every query's results (all of them: "More results" until every month is searched)
    are the papers `find.search_matches` finds: the ranker's word rules."""
    from digest.rank.analyzer import analyzer_for, tokenize
    from digest.rank.find import compile_search, search_matches

    config = load_config(site.parent / "config.toml", required=True)
    analyzer = analyzer_for(config.synonyms or None)
    features = _paper_features(config)
    papers = _papers(config)
    # Words and joined pairs of the seeds themselves, sampled evenly.
    tokens = [t for p in papers[::17] for t in tokenize(p.abstract or "")]
    sampled = [tokens[i].word for i in range(0, len(tokens), 151)]
    sampled += [
        f"{tokens[i - 1].word} {tokens[i].word}"
        for i in range(1, len(tokens), 173)
        if tokens[i].joined
    ]
    page.goto((site / "index.html").as_uri())
    queries = list(dict.fromkeys(QUERIES + sampled))
    got = page.evaluate(ALL_RESULTS_JS, queries)  # one round trip, not a dozen a query
    checked = paged = 0
    for query in queries:
        compiled = compile_search(query, analyzer)
        want = sorted(title for title, have in features if search_matches(compiled, have))
        assert got[query]["count"] == len(want), query
        assert sorted(got[query]["titles"]) == want, query
        paged += got[query]["pages"]
        checked += 1
    assert checked > 60 and paged > 3  # common words took several pages
    assert page.errors == [] and page.dialogs == []


def test_the_browsers_stemmer_is_the_rankers(site: Path, page: Any) -> None:
    """static/snowball-english.js stems every word of the archive, and every pair of
    joined words written solid, as PyStemmer does (the ranker's stems)."""
    from digest.rank.analyzer import stem, tokenize

    config = load_config(site.parent / "config.toml", required=True)
    words: set[str] = set()
    for paper in _papers(config):
        tokens = tokenize(f"{paper.title}. {paper.abstract}")
        words.update(t.word for t in tokens)
        words.update(a.word + b.word for a, b in itertools.pairwise(tokens) if b.joined)
    vocabulary = sorted(words)
    assert len(vocabulary) > 10_000
    page.goto((site / "index.html").as_uri())
    page.add_script_tag(path=str(site / "static" / "snowball-english.js"))
    stems = page.evaluate("ws => ws.map(w => window.PAPERS_DIGEST_STEM(w))", vocabulary)
    assert dict(zip(vocabulary, stems, strict=True)) == {w: stem(w) for w in vocabulary}


def test_items_link_out_and_say_why_and_axe_finds_nothing_serious(site: Path, page: Any) -> None:
    """The day page's item: its words marked in the why-line and snippet, its links (each
    once, no `javascript:`); then axe-core on the index, a day page, a permalink and the
    email, light and dark (moderate findings aside)."""
    page.goto((site / "days" / "2025-12-29.html").as_uri())
    item = page.locator("li.item", has_text="Streaming text-to-speech").first
    assert {"text-to-speech", "TTS"} <= set(item.locator(".why mark").all_inner_texts())
    assert "TTS" in item.locator(".snippet mark").all_inner_texts()
    hrefs = item.locator(".links a").evaluate_all("as => as.map(a => a.href)")
    assert hrefs == [
        "https://huggingface.co/papers/2512.00077",
        "https://arxiv.org/abs/2512.00077",
        "https://arxiv.org/pdf/2512.00077",
        "https://github.com/o/r",
    ]
    assert "Ada Lovelace, Alan Turing, Grace Hopper et al." in item.inner_text()
    assert page.locator("a[href^=javascript]").count() == 0
    # Links in text are underlined (axe `link-in-text-block`), in the archive and the email.
    assert (
        item.locator(".links a").first.evaluate("a => getComputedStyle(a).textDecorationLine")
        == "underline"
    )
    axe = axe_module.Axe()
    found = []
    pages = ["index.html", "days/2025-12-29.html", "papers/2512.00077.html", "email.html"]
    for name in pages:
        page.goto((site / name).as_uri())
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            for v in axe.run(page, options=axe_options(scheme)).response["violations"]:
                if v["impact"] in ("serious", "critical") or name == "email.html":
                    found.append(f"{name} {scheme}: {v['id']} {v['impact']}")
    assert found == []
    assert page.errors == [] and page.dialogs == []


def test_search_results_pass_axe_and_page_on_by_keyboard(site: Path, page: Any) -> None:
    """A common word: a first page of results and "More results", which the keyboard
    reaches and presses; axe finds nothing serious in the results either."""
    page.goto((site / "index.html").as_uri())
    titles = search(page, "model")
    results = page.locator("#search-results")
    assert len(titles) == 50 and page.locator("#search-more").is_visible()
    found = [
        f"{v['id']} {v['impact']}"
        for v in axe_module.Axe().run(page).response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert found == []
    shows = results.get_attribute("data-shows")
    page.locator("#search-more").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "n => document.getElementById('search-results').dataset.shows !== n", arg=shows
    )
    first = results.locator("li").count()
    assert first > 50
    # Two clicks at once (a double click) go on once: no result twice, no month skipped.
    shows = results.get_attribute("data-shows")
    page.evaluate(
        "() => { const m = document.getElementById('search-more'); m.click(); m.click(); }"
    )
    page.wait_for_function(
        "n => document.getElementById('search-results').dataset.shows !== n", arg=shows
    )
    hrefs = results.locator("li a.title").evaluate_all("as => as.map(a => a.href)")
    assert (
        len(hrefs) == len(set(hrefs)) == min(first + 50, int(results.get_attribute("data-count")))
    )
    assert page.errors == [] and page.dialogs == []
