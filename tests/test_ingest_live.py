"""Live sources through the pipeline: a real HTTP server on 127.0.0.1 serves a daily-papers
JSON page, an HTML listing and an arXiv feed; conditional requests, failures isolated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest import pipeline
from digest.config import load_config
from digest.store import Store
from digest.text import fold_title

from .http_fixture_server import FixtureServer, Reply, Static

LIVE = Path(__file__).resolve().parent / "fixtures" / "live"
NOW = datetime(2025, 10, 17, 6, tzinfo=UTC)


@pytest.fixture
def server(http_server: FixtureServer) -> FixtureServer:
    """The session's HTTP fixture server, with no routes and no requests yet."""
    return http_server


def _config(tmp_path: Path, server: FixtureServer, extra: str = "") -> Path:
    text = f"""
[[sources]]
name = "hf"
kind = "hf_daily"
url = "{server.url("/api/daily_papers")}?date={{date}}"

[[sources]]
name = "hf-page"
kind = "listing"
url = "{server.url("/papers")}"

[[sources]]
name = "arxiv"
kind = "feed"
url = "{server.url("/rss/cs.CL")}"
{extra}
"""
    (tmp_path / "config.toml").write_text(text)
    return tmp_path / "config.toml"


def test_live_sources_ingest_then_304_is_nothing_new(tmp_path: Path, server: FixtureServer) -> None:
    server.route(
        "/api/daily_papers",
        Static.file(LIVE / "daily_papers.json", "application/json", etag='"d1"'),
    )
    server.route(
        "/papers",
        Static.file(
            LIVE / "hf_listing_island.html",
            "text/html",
            last_modified="Fri, 17 Oct 2025 05:00:00 GMT",
        ),
    )
    server.route(
        "/rss/cs.CL", Static.file(LIVE / "arxiv_rss.xml", "application/rss+xml", etag='"r1"')
    )
    config = load_config(_config(tmp_path, server), required=True)
    with Store(config.store_path) as store:
        first = pipeline.ingest(config, store, now=NOW)
        assert first.errors == () and first.counts.new > 0
        papers = store.papers()
        assert {p.first_seen for p in papers} == {NOW}  # stamped with the fetch time
        assert any(p.arxiv_id for p in papers)
        again = pipeline.ingest(config, store, now=NOW + timedelta(hours=1))
        assert (again.counts.new, again.counts.updated, again.errors) == (0, 0, ())
    hf = [r for r in server.requests if r.path.startswith("/api/daily_papers")]
    assert hf[0].path.endswith("date=2025-10-17")
    assert hf[1].headers.get("if-none-match") == '"d1"'
    assert server.requests_to("/papers")[1].headers.get("if-modified-since")
    assert hf[0].headers["user-agent"].startswith("papers-digest/")
    assert hf[0].headers["accept"] == "application/json"


def test_a_failing_source_is_reported_and_the_others_still_ingested(
    tmp_path: Path, server: FixtureServer
) -> None:
    server.route("/api/daily_papers", Reply(200, b"{not json"))
    server.route("/papers", Reply(404, b"gone"))
    server.route("/rss/cs.CL", Static.file(LIVE / "arxiv_rss.xml", "application/rss+xml"))
    config = load_config(_config(tmp_path, server), required=True)
    with Store(config.store_path) as store:
        report = pipeline.ingest(config, store, now=NOW)
        assert report.counts.new > 0  # the feed
        assert len(report.errors) == 2
        assert any(e.startswith("source 'hf':") and "JSON" in e for e in report.errors)
        assert any(e.startswith("source 'hf-page':") and "404" in e for e in report.errors)
        assert all("\n" not in e for e in report.errors)


def test_the_api_record_of_a_seeded_paper_merges_into_its_row(
    seeded_project: Path, server: FixtureServer
) -> None:
    """A paper the store has from a seed capture, served again by the JSON API, stays one
    row under its first id; the API's arXiv id and link join the seed record."""
    with Store(seeded_project / "var" / "digest.sqlite3") as store:
        seeded = {fold_title(p.title): p for p in store.papers()}
    server.route("/api/daily_papers", Static.file(LIVE / "daily_papers.json", "application/json"))
    server.route("/papers", Reply(404))
    server.route("/rss/cs.CL", Reply(404))
    config = load_config(_config(seeded_project, server), required=True)
    with Store(config.store_path) as store:
        report = pipeline.ingest(config, store, now=NOW)
        papers = store.papers()
    assert report.counts.updated > 0
    titles = [fold_title(p.title) for p in papers]
    assert len(titles) == len(set(titles))
    merged = [p for p in papers if set(p.sources) == {"seeds", "hf"}]
    assert merged and all(p.arxiv_id for p in merged)
    assert all(p.id == seeded[fold_title(p.title)].id for p in merged)
