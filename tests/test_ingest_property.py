"""No input of any kind makes an ingest raise anything but a `DigestError`.

Hypothesis makes documents of every kind (bytes, JSON in the daily papers' vocabulary,
XML in the feeds' vocabulary, text in the captures' vocabulary, real fixtures cut and
spliced) and reads each as every kind: a parser may only raise `SourceError` (one line,
naming the document), never a parser bug; what it yields can always be stored; and an
ingest of the same bytes as a file raises nothing and reports one line per error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import pipeline
from digest.config import load_config
from digest.errors import SourceError
from digest.model import SourceWarning
from digest.sources import known_kinds, parser_for
from digest.store import Store

from .conftest import FIXTURES

NOW = datetime(2025, 10, 20, 6, tzinfo=UTC)
ORIGIN = "property-input"
REAL = [
    FIXTURES / "wild" / "hf_daily_2025-07-22.json",
    FIXTURES / "wild" / "arxiv_api.xml",
    FIXTURES / "wild" / "hf_papers_page.html",
    FIXTURES / "listing" / "authors_and_dates.txt",
]

_HF_KEYS = [
    "paper", "id", "title", "summary", "authors", "name", "hidden", "publishedAt",
    "submittedOnDailyAt", "upvotes", "numComments", "githubRepo", "githubStars",
    "projectPage", "thumbnail", "mediaUrl", "mediaUrls", "organization", "fullname",
    "ai_summary", "ai_keywords", "dailyPapers", "date", "dateString", "error",
]  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.sampled_from(["2401.00001v2", "2025-07-22T01:00:00.000Z", "https://x.org/a", "9999-12-31"]),
    st.text(max_size=20),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(_HF_KEYS), inner, max_size=6),
    ),
    max_leaves=25,
)
_XML_PARTS = [
    '<?xml version="1.0"?>', "<rss version='2.0'>", "<channel>", "</channel>", "</rss>",
    "<feed xmlns='http://www.w3.org/2005/Atom'>", "</feed>", "<rdf:RDF xmlns:rdf='r'>",
    "<item>", "</item>", "<entry>", "</entry>", "<title>", "</title>", "<title type='html'>",
    "<id>", "</id>", "<link href='https://arxiv.org/abs/2401.00001v2'/>", "<link>", "</link>",
    "http://arxiv.org/api/errors#bad", "Error", "oai:arXiv.org:2401.00001v1",
    "arXiv:2401.00001v1 Announce Type: replace Abstract: text", "<summary>", "</summary>",
    "<arxiv:doi xmlns:arxiv='http://arxiv.org/schemas/atom'>10.1/x</arxiv:doi>",
    "<category term='cs.CL'/>", "<updated>9999-12-31T23:59:59-23:59</updated>",
    "<pubDate>Sat, 18 Oct 2025 00:00:00 -0400</pubDate>", "&lt;b&gt;x&lt;/b&gt;", "&amp;",
    "<![CDATA[ <b> ]]>", "(arXiv:2309.01234v2 [cs.CL] UPDATED)", "<dc:creator>", "A, B and C",
    "</dc:creator>", "&#xD800;", "<html>", "<body>", "<article>", "<h3>", "</h3>", "<p>",
    "<div data-target='DailyPapers' data-props='{}'>", "\n", " ", "x",
]  # fmt: skip
_TEXT_PARTS = [
    "Daily Papers", "Oct 16", "Feb 30", "Sep 13, 2023 5", "• 9 authors", "·", "deepmind Deepmind",
    "A Title", "An abstract long enough to read as one, ending in a full stop.", "", "\r", "$^2$",
    "99999999999999999999 authors", "\u2028", "\x0c",
]  # fmt: skip


_VALUE = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(_HF_KEYS), _SCALARS, max_size=3),
)
_HF_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "paper": st.fixed_dictionaries(
            {}, optional={k: _VALUE for k in _HF_KEYS if k not in ("paper", "dailyPapers")}
        ),
        **{k: _VALUE for k in ("title", "summary", "publishedAt", "numComments", "thumbnail")},
    },
)
_HF_ANSWER = st.one_of(
    st.lists(_HF_ITEM, max_size=4),
    st.fixed_dictionaries(
        {"dailyPapers": st.lists(_HF_ITEM, max_size=3)}, optional={"date": _SCALARS}
    ),
).map(lambda v: json.dumps(v).encode())

_FEED_VALUES = {
    "title": ["Error", "", "  ", "&lt;b&gt;Bold&lt;/b&gt; title", "T",
              "A (arXiv:2309.01234v2 [cs.CL] UPDATED)"],
    "id": ["http://arxiv.org/api/errors#x", "oai:arXiv.org:2401.00001v3", "urn:x", "",
           "http://arxiv.org/abs/hep-th/9901001v1"],
    "link": ["https://arxiv.org/abs/2401.00001", "https://x.org/1", "https://x.org/1", "nota url"],
    "summary": ["arXiv:2401.00001v1 Announce Type: replace-cross Abstract: t",
                "&lt;p&gt;x&lt;/p&gt;", ""],
    "date": ["9999-12-31T23:59:59-23:59", "Sat, 18 Oct 2025 00:00:00 -0400", "garbage",
             "2025-10-16T00:00:00Z"],
    "author": ["A, B and C", "&lt;a href='x'&gt;Ana&lt;/a&gt;", ""],
    "doi": ["10.1/X", "https://doi.org/10.5555/y.", "doi"],
    "category": ["cs.CL", "", "x" * 300],
}  # fmt: skip
_ENTRY = st.fixed_dictionaries(
    {}, optional={k: st.sampled_from(v) | st.text(max_size=8) for k, v in _FEED_VALUES.items()}
)


#: How each field of `_ENTRY` is written (both the RSS and the Atom element, where they differ).
_FIELD = {
    "title": "<title type='html'>{v}</title>",
    "id": "<id>{v}</id><guid>{v}</guid>",
    "link": "<link href='{v}'>{v}</link>",
    "summary": "<summary>{v}</summary>",
    "date": "<updated>{v}</updated><pubDate>{v}</pubDate>",
    "author": "<author><name>{v}</name></author><dc:creator>{v}</dc:creator>",
    "doi": "<arxiv:doi>{v}</arxiv:doi>",
    "category": "<category term='{v}'>{v}</category>",
}


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;") if "&" not in text else text


def _feed(shape: str, entries: list[dict[str, str]]) -> bytes:
    """A feed of `shape` (rss, atom, rdf) holding `entries`: what a parser meets first."""
    tag = {"rss": "item", "atom": "entry", "rdf": "item"}[shape]
    parts = []
    for e in entries:
        fields = {k: _xml(v) for k, v in e.items()}
        inner = "".join(_FIELD[k].format(v=v) for k, v in fields.items())
        parts.append(f"<{tag}>{inner}</{tag}>")
    body = "".join(parts)
    ns = "xmlns:arxiv='http://arxiv.org/schemas/atom' xmlns:dc='http://purl.org/dc/elements/1.1/'"
    if shape == "atom":
        doc = f"<feed xmlns='http://www.w3.org/2005/Atom' {ns}><title>f</title>{body}</feed>"
    elif shape == "rdf":
        doc = (
            "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'"
            f" xmlns='http://purl.org/rss/1.0/' {ns}><channel><title>c</title></channel>"
            f"{body}</rdf:RDF>"
        )
    else:
        doc = f"<rss version='2.0' {ns}><channel><title>c</title>{body}</channel></rss>"
    return ("<?xml version='1.0' encoding='utf-8'?>" + doc).encode("utf-8", "surrogatepass")


_FEEDS = st.builds(_feed, st.sampled_from(["rss", "atom", "rdf"]), st.lists(_ENTRY, max_size=4))


def _splice(data: bytes, at: int, cut: int, insert: bytes) -> bytes:
    at %= len(data) + 1
    return data[:at] + insert + data[at + cut :]


DOCUMENTS = st.one_of(
    _FEEDS,
    _HF_ANSWER,
    st.binary(max_size=200),
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.lists(st.sampled_from(_XML_PARTS), max_size=30).map(lambda p: "".join(p).encode()),
    st.lists(st.sampled_from(_TEXT_PARTS), max_size=20).map(lambda p: "\n".join(p).encode()),
    st.builds(
        _splice,
        st.sampled_from([p.read_bytes() for p in REAL]),
        st.integers(min_value=0, max_value=20_000),
        st.integers(min_value=0, max_value=400),
        st.binary(max_size=8) | st.sampled_from([b"<", b"\x00", b'"', b"\xff", b"]"]),
    ),
)


@pytest.fixture(scope="module")
def workplace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Store]]:
    """One directory and store for all examples (Hypothesis runs many in one test)."""
    root = tmp_path_factory.mktemp("property")
    (root / "config.toml").write_text('[store]\npath = "digest.sqlite3"\n')
    with Store(root / "digest.sqlite3") as store:
        yield root, store


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=DOCUMENTS)
def test_no_input_makes_a_parser_or_an_ingest_raise(
    data: bytes, workplace: tuple[Path, Store]
) -> None:
    root, store = workplace
    for kind in known_kinds():
        parser = parser_for(kind)
        assert parser is not None
        warnings: list[SourceWarning] = []
        try:
            papers = list(
                parser(
                    data,
                    origin=ORIGIN,
                    source="p",
                    captured=date(2025, 10, 20),
                    warn=warnings.append,
                )
            )
        except SourceError as exc:  # anything else fails the test: a parser bug
            assert str(exc).startswith(ORIGIN) and "\n" not in str(exc)
            continue
        assert all(p.id and p.title.strip() for p in papers)
        assert all(isinstance(w, SourceWarning) and w.origin == ORIGIN for w in warnings)
        store.add_papers(papers, arrived_at=NOW)  # what a parser yields can be stored
    path = root / "input.bin"
    path.write_bytes(data)
    config = load_config(root / "config.toml", required=True)
    report = pipeline.ingest(config, store, [str(path)], now=NOW)
    assert all("\n" not in e and e.startswith(str(path)) for e in report.errors)
    assert not any(e.startswith(f"{path}: cannot be parsed (") for e in report.errors), (
        report.errors
    )
