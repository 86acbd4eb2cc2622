"""Documents in the shapes Hugging Face and arXiv really serve (tests/fixtures/wild/).

Each fixture is small and written here, in a real shape: daily papers answers from 2024
(`mediaUrl`), 2025 (`thumbnail`, `ai_keywords`, organisation objects) and 2026
(`githubStars`, `ai_summary_model`), a saved `huggingface.co/papers?date=` page whose data
names its day as `date`, rss.arxiv.org Atom, an export.arxiv.org API answer and its error
answer, a pre-2024 arXiv RSS 1.0 (RDF) feed, a generic Atom feed whose entries share a
title, and files that are none of these. Each parseable one has a golden file beside it
(`NAME.expected.json`: the records and warnings, read by kind `auto`).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest import pipeline
from digest.cli import cli
from digest.config import load_config
from digest.errors import SourceError
from digest.model import Paper, SourceWarning
from digest.render.environment import make_environment
from digest.sources import parse_any
from digest.sources.days import day_in_origin
from digest.sources.detect import sniff
from digest.store import Store
from digest.store.merge import Same, sameness

from .conftest import FIXTURES
from .golden import assert_golden, parser_output

WILD = FIXTURES / "wild"
CAPTURED = date(2025, 10, 20)
NOW = datetime(2025, 10, 20, 6, tzinfo=UTC)
#: The fixtures that are none of the kinds, and the start of the one line they get.
NOT_DOCUMENTS = {
    "scan.pdf": "a PDF, not a listing page, feed or daily papers JSON",
    "logo.svg": "an XML document with root <svg>, not an RSS, Atom or RDF feed",
    "bad_gateway.html": "not a Hugging Face papers listing page",
}
DOCUMENTS = sorted(
    p.name
    for p in WILD.iterdir()
    if p.name not in NOT_DOCUMENTS and not p.name.endswith(".expected.json")
)
KINDS = {
    "arxiv_api.xml": "feed",
    "arxiv_api_error.xml": "feed",
    "arxiv_atom.xml": "feed",
    "arxiv_rdf_2023-10-17.xml": "feed",
    "reading_group.atom": "feed",
    "hf_daily_2024-05-27.json": "hf_daily",
    "hf_daily_2025-07-22.json": "hf_daily",
    "hf_daily_newest.json": "hf_daily",
    "hf_papers_page.html": "listing",
}


def read(name: str) -> tuple[list[Paper], list[SourceWarning]]:
    warnings: list[SourceWarning] = []
    data = (WILD / name).read_bytes()
    papers = list(
        parse_any(data, origin=name, source="wild", captured=CAPTURED, warn=warnings.append)
    )
    return papers, warnings


def test_every_document_has_a_kind_and_a_golden_file() -> None:
    assert sorted(KINDS) == DOCUMENTS
    for name in DOCUMENTS:
        assert (WILD / name).with_suffix(".expected.json").exists() or pytest.fail(name)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_kind_by_content_and_golden(name: str) -> None:
    assert sniff((WILD / name).read_bytes(), name) == KINDS[name]
    assert_golden((WILD / name).with_suffix(".expected.json"), parser_output(*read(name)))


@pytest.mark.parametrize(("name", "message"), sorted(NOT_DOCUMENTS.items()))
def test_a_file_of_no_kind_is_one_line_naming_it(name: str, message: str) -> None:
    with pytest.raises(SourceError) as info:
        read(name)
    text = str(info.value)
    assert text.startswith(f"{name}: {message}") and "\n" not in text
    assert "URL" not in text  # a file is talked of as a file


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\xef\xbb\xbf  [{}]", "hf_daily"),
        (b'{"dailyPapers": []}', "hf_daily"),
        (b'<?xml version="1.0"?>\n<!-- saved -->\n<rss version="2.0"><channel/></rss>', "feed"),
        (b"<rdf:RDF xmlns:rdf='x'/>", "feed"),
        ("<?xml version='1.0' encoding='utf-16'?><feed/>".encode("utf-16"), "feed"),
        (b"<!DOCTYPE html><html></html>", "listing"),
        (b"<div class='papers'>", "listing"),
        (b"Daily Papers\n\nOct 16\n\nA title\nAn abstract.\n", "listing"),
    ],
)
def test_kinds_by_their_first_bytes(head: bytes, kind: str) -> None:
    assert sniff(head, "x") == kind


def test_the_day_a_document_names() -> None:
    assert day_in_origin("https://huggingface.co/api/daily_papers?date=2024-05-27") == date(
        2024, 5, 27
    )
    assert day_in_origin("https://huggingface.co/papers/date/2025-07-22") == date(2025, 7, 22)
    assert day_in_origin("archive/2026-02-30.json") is None  # no such day
    assert day_in_origin("archive/hf-2026-02-03-page.json") == date(2026, 2, 3)
    assert day_in_origin("2025-01-01/daily.json") is None  # the file's name, not its folder
    by_file = {name: {p.first_seen for p in read(name)[0]} for name in KINDS}
    midnight = lambda *ymd: {datetime(*ymd, tzinfo=UTC)}  # noqa: E731
    assert by_file["hf_daily_2024-05-27.json"] == midnight(2024, 5, 27)  # its file name
    assert by_file["hf_daily_newest.json"] == midnight(2026, 8, 21)  # most submittedOnDailyAt
    assert by_file["hf_papers_page.html"] == midnight(2024, 8, 1)  # the page's own `date`
    assert by_file["arxiv_rdf_2023-10-17.xml"] == midnight(2023, 10, 17)


def test_arxiv_api_errors_are_warnings_with_file_and_line() -> None:
    papers, warnings = read("arxiv_api_error.xml")
    assert papers == []
    assert [str(w) for w in warnings] == [
        "arxiv_api_error.xml:10: entry 1: the arXiv API answered with an error"
        " (incorrect id format for 1234.12345); skipped",
        "arxiv_api_error.xml: no usable entries in the feed 'ArXiv Query:"
        " search_query=&id_list=1234.12345&start=0&max_results=10'",
    ]


def test_what_arxiv_says_of_a_paper() -> None:
    (speech, h1), warnings = read("arxiv_api.xml")
    assert warnings == []
    assert (speech.id, speech.version, speech.doi) == (
        "2510.13151",
        2,
        "10.21437/interspeech.2025-1234",
    )
    assert speech.title == "Token Merging for Multilingual Speech Recognition"
    assert speech.pdf_url == "http://arxiv.org/pdf/2510.13151v2"
    assert speech.keywords == ("cs.CL", "cs.SD", "eess.AS")  # the primary category first
    assert speech.comment == "5 pages, 2 figures; accepted at Interspeech 2025"
    assert (h1.id, h1.authors, h1.authors_count) == ("hep-ex/0307015", ("H1 Collaboration",), 1)
    (new, old), _ = read("arxiv_rdf_2023-10-17.xml")
    assert new.title.endswith("Large Language Models.") and new.version == 1
    assert new.authors == ("Mengkang Hu", "Yao Mu")  # the RDF feed's HTML links, as text
    assert old.revision and old.version == 2  # `[cs.CL] UPDATED`: a new version


def test_every_hf_api_shape_gives_what_readers_want() -> None:
    aya, _ = read("hf_daily_2024-05-27.json")[0]
    assert aya.thumbnail_url and aya.thumbnail_url.endswith("/aya23.png")  # `mediaUrl`
    assert (aya.comments, aya.authors_count, aya.authors[0]) == (1, 3, "Ana Souza")
    survey, tokenizers = read("hf_daily_2025-07-22.json")[0]
    assert survey.thumbnail_url == (
        "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2507.13334.png"
    )
    assert survey.organization == "Example University"
    assert survey.code_url == "https://github.com/example/context-engineering"
    assert survey.summary.startswith("A survey of context")
    assert tokenizers.thumbnail_url and tokenizers.thumbnail_url.endswith("/tok.png")
    assert tokenizers.version == 2 and tokenizers.summary == ""
    forcing, small, _ = read("hf_daily_newest.json")[0]
    assert (forcing.code_stars, forcing.project_url) == (
        1234,
        "https://example.org/diffusion-forcing",
    )
    assert forcing.organization == "Example Lab"
    assert (small.organization, small.code_stars, small.authors_count) == ("tiny-org", 0, None)


def test_titles_typed_as_html_become_text_and_twins_stay_apart(tmp_path: Path) -> None:
    papers, warnings = read("reading_group.atom")
    titles = [p.title for p in papers]
    assert titles == ["Reading Group Notes"] * 3 + ["Scaling Laws & Data Mixtures"] * 2
    assert [w.skipped for w in warnings] == [True, True]
    assert "reading_group.atom:49: entry 7 ('An Entry Nobody Can Link To'): no id" in str(
        warnings[1]
    )
    with Store(tmp_path / "s.sqlite3") as store:
        counts = store.add_papers(papers, arrived_at=NOW)
        # three notes with three links are three papers; one DOI on two sites is one
        assert (counts.new, counts.unchanged, counts.title_merges) == (4, 1, ())
        capture = Paper(id="t-capture", title="Reading group notes.", abstract="", last_seen=NOW)
        counts = store.add_papers([capture], arrived_at=NOW)
        assert counts.title_merges == (("Reading group notes.", papers[0].id),)  # the oldest


def test_sameness() -> None:
    base = Paper(id="t1", title="Notes", abstract="", url="https://a.example/1")
    other_link = Paper(id="t2", title="Notes", abstract="", url="https://a.example/2")
    assert sameness(base, other_link) is None
    assert sameness(base, Paper(id="t3", title="NOTES", abstract="", url="http://a.example/1/"))
    with_author = Paper(id="t4", title="Notes", abstract="", authors=("Ada L.",), url="x:")
    assert sameness(with_author, Paper(id="t5", title="notes", abstract="", authors=("ada l",)))
    assert (
        sameness(with_author, Paper(id="t6", title="Notes", abstract="", authors=("Bo",))) is None
    )
    by_doi = Paper(id="t7", title="Other title", abstract="", doi="10.1/x")
    assert sameness(by_doi, Paper(id="t8", title="Notes", abstract="", doi="10.1/x")) == Same.DOI
    arxiv = Paper(id="2401.00001", title="Notes", abstract="", arxiv_id="2401.00001")
    assert (
        sameness(arxiv, Paper(id="2401.00002", title="Notes", abstract="", arxiv_id="2401.00002"))
        is None
    )
    assert sameness(arxiv, Paper(id="t9", title="Notes", abstract="")) == Same.TITLE_ALONE


def test_sources_merge_richer_field_by_field(tmp_path: Path) -> None:
    """The listing feed, the API answer and a daily papers item of one paper: one row that
    keeps the best of each (version, DOI and comment from the API, the categories of both)."""
    atom, _ = read("arxiv_atom.xml")
    api, _ = read("arxiv_api.xml")
    hf = Paper(
        id="2510.13151",
        title="Token Merging for Multilingual Speech Recognition",
        abstract="Short.",
        arxiv_id="2510.13151",
        summary="Merging tokens makes multilingual ASR cheaper.",
        keywords=("token merging", "cs.cl"),
        code_url="https://github.com/example/merge",
        code_stars=5,
        comments=2,
        last_seen=NOW,
    )
    with Store(tmp_path / "s.sqlite3") as store:
        store.add_papers([atom[0]], arrived_at=NOW)
        store.add_papers([api[0], hf], arrived_at=NOW)
        (row,) = [p for p in store.papers() if p.id == "2510.13151"]
    assert (row.version, row.doi, row.comments, row.code_stars) == (
        2,
        "10.21437/interspeech.2025-1234",
        2,
        5,
    )
    assert row.keywords == ("cs.CL", "eess.AS", "cs.SD", "token merging")
    assert row.summary.startswith("Merging tokens") and row.comment.startswith("5 pages")
    assert row.abstract.endswith("keep accuracy within 1%.")  # the longer abstract
    assert row.pdf_url == "https://arxiv.org/pdf/2510.13151"  # the first one known
    assert row.first_seen == datetime(2025, 10, 16, tzinfo=UTC)


def _project(tmp_path: Path) -> Path:
    folder = tmp_path / "downloads"
    shutil.copytree(WILD, folder, ignore=shutil.ignore_patterns("*.expected.json"))
    (tmp_path / "config.toml").write_text('[store]\npath = "var/digest.sqlite3"\n')
    return folder


def _invoke(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    config = str(tmp_path / "config.toml")
    result = CliRunner().invoke(cli, ["--config", config, "--now", NOW.isoformat(), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_a_folder_of_downloads_ingests_by_kind(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    code, out, err = _invoke(tmp_path, "ingest", str(folder))
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == len(NOT_DOCUMENTS)
    for name, message in NOT_DOCUMENTS.items():
        assert any(e.startswith(f"error: {folder / name}: {message}") for e in errors)
    # skipped: 3 malformed entries, 2 revisions of papers never seen, 1 twin with nothing new
    assert out == "16 new, 1 updated, 6 skipped\n"
    code, out, _ = _invoke(tmp_path, "papers", "--json")
    rows = {r["id"]: r for r in map(json.loads, out.splitlines())}
    forcing = rows["2608.09001"]
    assert forcing["first_seen"] == "2026-08-21T00:00:00+00:00"  # the answer's day ...
    assert (forcing["code_url"], forcing["code_stars"]) == (
        "https://github.com/example/dforce",
        1234,
    )
    assert forcing["keywords"] == ["video diffusion", "diffusion forcing"]
    assert forcing["authors"] == ["Ines Garcia", "Jon Berg", "Kai Sato"]
    config = load_config(tmp_path / "config.toml", required=True)
    with Store(config.store_path) as store:  # ... while every row arrived at the ingest
        assert store.row_arrived_by(NOW) == store.count_papers() == len(rows)
        assert store.newest_arrival() == NOW


def test_kind_forced_and_refused(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    daily = folder / "hf_daily_2024-05-27.json"
    code, out, err = _invoke(tmp_path, "ingest", "--kind", "feed", str(daily))
    assert code == 2 and err.startswith(f"error: {daily}: not a readable RSS/Atom feed")
    code, out, err = _invoke(tmp_path, "ingest", "--kind", "listing", str(daily))
    assert code == 2 and f"{daily}: JSON, not a listing page or capture" in err
    assert out == "0 new, 0 updated, 0 skipped\n"  # nothing stored
    code, out, err = _invoke(tmp_path, "ingest", "--kind", "hf_daily", str(daily))
    assert (code, out) == (0, "2 new, 0 updated, 0 skipped\n")
    code, _, err = _invoke(tmp_path, "ingest", "--kind", "feed")
    assert code == 2 and "--kind applies to the PATHs" in err


def test_a_source_of_kind_auto(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    (tmp_path / "config.toml").write_text(
        '[[sources]]\nname = "saved"\nkind = "auto"\npath = "downloads/hf_daily_*.json"\n'
    )
    config = load_config(tmp_path / "config.toml", required=True)
    with Store(config.store_path) as store:
        report = pipeline.ingest(config, store, now=NOW)
        assert (report.errors, report.counts.new) == ((), 7)
    assert folder.exists()


def test_templates_can_show_the_new_fields_escaped(tmp_path: Path) -> None:
    (tmp_path / "probe.html.j2").write_text(
        "{{ paper.authors|join(', ') }} | {{ paper.keywords|join(' · ') }}"
        " | {{ paper.code_url|safe_url }} ({{ paper.code_stars }})"
    )
    paper = Paper(
        id="x",
        title="T",
        abstract="",
        authors=("Ada <script>",),
        keywords=("a&b",),
        code_url="https://github.com/x/y",
        code_stars=3,
    )
    text = make_environment(tmp_path).get_template("probe.html.j2").render(paper=paper)
    assert text == "Ada &lt;script&gt; | a&amp;b | https://github.com/x/y (3)"


def test_a_fetched_answer_of_a_past_day_keeps_its_day(tmp_path: Path, http_server: object) -> None:
    """`?date=2024-05-27` fetched in 2025: first seen on its day, arrived at the fetch."""
    from .http_fixture_server import FixtureServer, Static

    assert isinstance(http_server, FixtureServer)
    http_server.route(
        "/api/daily_papers", Static.file(WILD / "hf_daily_2024-05-27.json", "application/json")
    )
    url = http_server.url("/api/daily_papers")
    (tmp_path / "config.toml").write_text(
        f'[[sources]]\nname = "old"\nkind = "auto"\nurl = "{url}?date=2024-05-27"\n'
        f'[[sources]]\nname = "today"\nkind = "hf_daily"\nurl = "{url}?date={{date}}"\n'
    )
    config = load_config(tmp_path / "config.toml", required=True)
    with Store(config.store_path) as store:
        report = pipeline.ingest(config, store, now=NOW)
        assert (report.errors, report.counts.new) == ((), 2)
        assert {p.first_seen for p in store.papers()} == {datetime(2024, 5, 27, tzinfo=UTC)}
        assert store.row_arrived_by(NOW) == 2 and store.newest_arrival() == NOW
