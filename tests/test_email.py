"""Digest rendering: golden Markdown/text, the HTML email (size, composer = whole
template), hostile text in every output, and the email in headless Chromium."""

from __future__ import annotations

import dataclasses
import html as html_lib
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import markdown
import pytest

from digest.links import paper_file
from digest.model import Digest, DigestSection, Paper
from digest.rank import make_profile, prepare, rank_prepared
from digest.render import EmailRenderer, Links, make_environment, markdown_html, render_digest

from .conftest import FIXTURES
from .factories import linked_paper, make_paper
from .golden import assert_golden

NOW = datetime(2025, 10, 17, 7, tzinfo=UTC)
GOLDEN = FIXTURES / "golden"
HOSTILE = [
    "<script>alert(1)</script>",
    "</textarea><b>x",
    "{{ 7*7 }}",
    "[x](javascript:alert(1))",
    '"><img src=x onerror=alert(1)>',
    "\u202eevil\u202c",
    "@@body@@ @@why@@ @@unsubscribe@@",
]


PAPERS = [
    make_paper(
        "LoRA Adapters for Speech Recognition",
        "We fine-tune speech models with low-rank adaptation. ASR error drops by a tenth. "
        "A third sentence is not shown.",
        authors_count=5,
        published=date(2025, 10, 15),
        upvotes=12,
        arxiv_id="2510.01234",
    ),
    make_paper(
        "Text-to-Speech in Real Time",
        "A streaming TTS system. It runs on a phone.",
        organization="Deepmind",
        published=date(2025, 10, 14),
    ),
    make_paper("Video Diffusion at Scale", "We scale video diffusion models. Quality improves."),
]


def _digest(
    papers: list[Paper],
    keyword_sets: list[list[str]],
    notes: tuple[str, ...] = (),
    max_items: int | None = None,
) -> Digest:
    profiles = [
        make_profile(f"p{i}" if len(ks) > 1 else ks[0], ks, max_items=max_items)
        for i, ks in enumerate(keyword_sets)
    ]
    ranked = rank_prepared(prepare(papers, NOW), profiles)
    sections = tuple(
        DigestSection(p, r.items, r.matched - len(r.items))
        for p, r in zip(profiles, ranked, strict=True)
    )
    return Digest(
        day=NOW.date(),
        title="papers-digest",
        sections=sections,
        papers_considered=len(papers),
        notes=notes,
    )


@pytest.mark.parametrize("fmt", ["markdown", "text"])
def test_golden_digest(fmt: str) -> None:
    digest = _digest(PAPERS, [["speech", "TTS"], ["quantization"]])
    links = Links(manage="https://d.example/manage?t=1", unsubscribe="https://d.example/u?t=1")
    out = render_digest(
        digest, fmt, env=make_environment(), base_url="https://d.example/", links=links
    )
    assert_golden(GOLDEN / f"digest.{'md' if fmt == 'markdown' else 'txt'}", out)


def test_golden_email_text() -> None:
    digest = _digest(PAPERS, [["speech", "TTS"], ["quantization"]])
    email = EmailRenderer(make_environment(), base_url="https://d.example/").render(
        digest, Links(unsubscribe="https://d.example/u?t=1")
    )
    assert_golden(GOLDEN / "email.txt", email.text)
    assert email.subject == "papers-digest: 2 new papers — Text-to-Speech in Real Time"


def _visible(html: str) -> str:
    html = re.sub(r"(?s)<style.*?</style>", "", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _speech_papers(n: int) -> list[Paper]:
    long = " ".join(["This sentence pads the abstract to a realistic length of prose."] * 25)
    papers = [
        make_paper(
            f"Speech model number {i} with a fairly long descriptive title",
            long,
            authors_count=7,
            upvotes=i,
            published=date(2025, 10, 1),
        )
        for i in range(n)
    ]
    return papers


def _twenty() -> Digest:
    """A reader who asked for 20 papers a profile (the default is 10)."""
    digest = _digest(_speech_papers(20), [["speech"]], max_items=20)
    assert digest.item_count == 20
    return digest


def test_ten_by_default_and_the_rest_counted_with_a_link_to_the_archive() -> None:
    digest = _digest(_speech_papers(25), [["speech"]])
    (section,) = digest.sections
    assert (len(section.items), section.more) == (10, 15)
    renderer = EmailRenderer(make_environment(), base_url="https://d.example/")
    whole, composed = renderer.render_whole(digest), renderer.render(digest)
    assert "15 more matched today: https://d.example/days/2025-10-17.html" in composed.text
    assert '<a href="https://d.example/days/2025-10-17.html"' in composed.html
    assert _visible(whole.html) == _visible(composed.html) and whole.text == composed.text
    no_site = EmailRenderer(make_environment()).render(digest)
    assert "15 more matched today\n" in no_site.text and "days/" not in no_site.text
    md = render_digest(digest, "markdown", env=make_environment(), base_url="https://d.example/")
    assert "_15 more matched today: [the archive](<https://d.example/days/2025-10-17.html>)._" in md


def test_twenty_items_stay_under_gmail_clipping_and_composer_matches_template() -> None:
    digest = _twenty()
    renderer = EmailRenderer(make_environment(), base_url="https://d.example/")
    links = Links("https://d.example/", "https://d.example/m?t=1", "https://d.example/u?t=a&b")
    whole, composed = renderer.render_whole(digest, links), renderer.render(digest, links)
    assert len(composed.html.encode()) < 100_000 and len(whole.html.encode()) < 100_000
    assert _visible(whole.html) == _visible(composed.html)
    assert whole.text == composed.text
    assert "<style" in composed.html and "prefers-color-scheme: dark" in composed.html
    assert 'class="preheader"' in composed.html and "style=" in composed.html  # CSS inlined
    assert 'href="https://d.example/u?t=a&amp;b"' in composed.html


def test_empty_digest_says_why() -> None:
    nothing = _digest(PAPERS, [["quantum chromodynamics"]])
    email = EmailRenderer(make_environment()).render(nothing)
    assert "None of the 3 new papers matched your keywords today." in email.text
    assert "Nothing matched these keywords today." in _visible(email.html)
    assert (
        "No new papers arrived"
        in EmailRenderer(make_environment()).render(_digest([], [["speech"]])).text
    )
    failed = _digest(PAPERS, [["speech"]], notes=("A source failed: hf: timed out",))
    assert "A source failed: hf: timed out" in render_digest(failed, "markdown")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _assert_inert_html(html: str) -> None:
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in {"script", "img", "textarea", "iframe"}, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert not (attrs.get("href") or "").lower().startswith("javascript"), attrs


@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_text_is_inert_and_readable(evil: str) -> None:
    paper = make_paper(
        f"Speech {evil} title", f"About speech. {evil} in the abstract.", organization=f"Org {evil}"
    )
    digest = _digest([paper], [["speech", evil]])
    renderer = EmailRenderer(make_environment())
    for email in (renderer.render_whole(digest), renderer.render(digest)):
        _assert_inert_html(email.html)
        assert "49" not in email.text and "\u202e" not in email.html + email.text
        visible = _visible(email.html)
        if evil.startswith("\u202e"):
            assert "evil" in visible
        elif evil.startswith("@@"):
            assert "@@body@@ @@why@@" in visible
        else:
            assert "7*7" in visible or "alert" in visible or "textarea" in visible
    md = render_digest(digest, "markdown")
    _assert_inert_html(markdown.markdown(md))
    assert "49" not in md and "\u202e" not in md
    assert "\u202e" not in render_digest(digest, "text")


def test_huge_title_renders() -> None:
    paper = make_paper("Speech " + "x" * 100_000, "About speech.")
    email = EmailRenderer(make_environment()).render(_digest([paper], [["speech"]]))
    assert "x" * 1000 in email.text


def test_markdown_filter_sanitises() -> None:
    html = str(
        markdown_html(
            "**hi** [x](javascript:alert(1)) <script>bad()</script> <img src=x onerror=a>"
        )
    )
    _assert_inert_html(html)
    assert "<strong>hi</strong>" in html


def test_email_has_no_horizontal_scroll_in_chromium(browser: Any, tmp_path: Path) -> None:
    renderer = EmailRenderer(make_environment(), base_url="https://d.example/")
    page_file = tmp_path / "email.html"
    page_file.write_text(renderer.render(_twenty(), Links(unsubscribe="https://d.example/u")).html)
    for width in (375, 800):
        context = browser.new_context(viewport={"width": width, "height": 900})
        try:
            page = context.new_page()
            page.goto(page_file.as_uri(), timeout=30_000)
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(tmp_path / f"email-{width}.png"), full_page=True)
            assert "Speech model number 0" in page.inner_text("body")
        finally:
            context.close()


def test_the_intro_note_is_markdown_sanitised() -> None:
    intro = "**Good morning.** [x](javascript:alert(1)) <script>bad()</script> [site](https://d.example)"
    renderer = EmailRenderer(make_environment(), intro=intro)
    for email in (renderer.render(_twenty()), renderer.render_whole(_twenty())):
        _assert_inert_html(email.html)
        assert "<strong" in email.html and "Good morning." in _visible(email.html)
        assert 'href="https://d.example"' in email.html


def test_the_email_shows_the_sentences_that_matched_with_the_words_marked() -> None:
    """The why-line names the paper's own words (not the keyword as typed), and the
    snippet is the sentence that matched, those words marked, in both renderers."""
    paper = make_paper(
        "Birds at dawn",
        "We count birds at dawn. A text-to-speech voice reads the counts aloud, and our "
        "text-to-speech model learns them. Rain ends it.",
    )
    digest = _digest([paper], [["TTS"]])
    renderer = EmailRenderer(make_environment())
    for email in (renderer.render(digest), renderer.render_whole(digest)):
        assert "Why: matches text-to-speech (abstract) for TTS" in email.text
        assert "   A text-to-speech voice reads the counts aloud, and our" in email.text
        assert "We count birds" not in email.text
        assert "A <mark>text-to-speech</mark> voice reads the counts aloud, and our " in email.html
        assert "matches <mark>text-to-speech</mark> (abstract) for TTS" in email.html
    md = render_digest(digest, "markdown")
    assert "_Why: matches **text-to-speech** (abstract) for TTS_" in md
    assert "A **text-to-speech** voice reads the counts aloud, and our **text-to" in md
    assert "A text-to-speech voice reads the counts aloud, and" in render_digest(digest, "text")
    # A title-only match shows the abstract's opening sentence.
    opening = _digest(
        [make_paper("TTS for birds", "We count birds at dawn. Rain ends it.")], [["TTS"]]
    )
    assert "   We count birds at dawn.\n" in renderer.render(opening).text


LINKED = linked_paper(
    "Speech [links](javascript:x) and *stars*",
    "About speech.",
    "2510.01234",
    pdf_url="https://arxiv.org/pdf/2510.01234v2",
    code_url="https://github.com/o/r_(x)",
    code_stars=1234,
    doi="10.1145/3576915",
    authors_count=9,
    summary="A <b>summary</b> with *stars*.",
)


def test_items_link_to_every_known_place_once_and_never_to_other_schemes() -> None:
    digest = _digest([LINKED], [["speech"]])
    renderer = EmailRenderer(make_environment(), base_url="https://d.example/")
    expected = [
        "https://huggingface.co/papers/2510.01234",  # the title
        "https://arxiv.org/abs/2510.01234",
        "https://arxiv.org/pdf/2510.01234v2",
        "https://github.com/o/r_(x)",
        "https://doi.org/10.1145/3576915",
    ]
    for email in (renderer.render(digest), renderer.render_whole(digest)):
        tags = _Tags()
        tags.feed(email.html.split("</main>")[0])
        assert [a["href"] for t, a in tags.tags if t == "a"] == expected
        _assert_inert_html(email.html)
        visible = html_lib.unescape(_visible(email.html))
        assert "Ada Lovelace, Alan Turing, Grace Hopper et al." in visible
        assert "Hugging Face summary: A <b>summary</b> with *stars*." in visible
        assert "arXiv · PDF · Code ★ 1,234 · DOI" in visible
        assert "javascript" not in email.text.split("Why:")[1]
        for label, url in zip(
            ("Hugging Face", "arXiv", "PDF", "Code ★ 1,234", "DOI"), expected, strict=True
        ):
            assert f"   {label}: {url}\n" in email.text
    md = render_digest(digest, "markdown", base_url="https://d.example/")
    html = markdown.markdown(md)
    tags = _Tags()
    tags.feed(html)
    hrefs = [a["href"] for t, a in tags.tags if t == "a"]
    assert hrefs == [u.replace("(", "%28").replace(")", "%29") for u in expected]
    assert "<em>" not in html.split("<em>Why")[0]  # the *stars* of the title stay literal
    assert "Speech [links](javascript:x) and *stars*" in re.sub(r"<[^>]+>", "", html)
    _assert_inert_html(html)


def test_a_paper_with_no_known_place_links_its_archive_page_or_nothing() -> None:
    bare = make_paper("Speech without links", "About speech.", url="ftp://x.example/p")
    digest = _digest([bare], [["speech"]])
    with_site = EmailRenderer(make_environment(), base_url="https://d.example/").render(digest)
    permalink = f"https://d.example/papers/{bare.id}.html"
    assert f'<a class="title" href="{permalink}"' in with_site.html
    assert f"   Archive: {permalink}\n" in with_site.text
    alone = EmailRenderer(make_environment()).render(digest)
    assert 'class="title-plain"' in alone.html and "ftp:" not in alone.html + alone.text


def test_the_archive_link_names_the_file_the_archive_writes_for_any_id() -> None:
    # An id that is not a safe file name gets a reduced name plus a hash in the archive
    # (publish/names.paper_file); the email must link that file, not a URL-quoted id.
    odd = dataclasses.replace(
        make_paper("Speech, odd id", "About speech.", url="ftp://x.example/p"), id="doi:10.1/a b"
    )
    digest = _digest([odd], [["speech"]])
    html = EmailRenderer(make_environment(), base_url="https://d.example/").render(digest).html
    assert f'href="https://d.example/papers/{paper_file(odd.id)}"' in html
    assert paper_file(odd.id).startswith("doi_10.1_a_b-")
