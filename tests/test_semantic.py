"""The optional semantic layer: the numpy MiniLM encoder against sentence-transformers'
own vectors, the fusion rule on tiny made-up vectors, and `digest embed` / `digest rank`
on a small store. The encoder tests skip with a reason when the `semantic` extra is not
installed (`make test` installs it); the fusion tests need only numpy."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from digest import rank
from digest.cli import cli
from digest.config import Config
from digest.deliver import make_backend
from digest.ingest import embed_missing
from digest.model import MEANING, DigestItem, Match, Paper
from digest.rank import dense, encoder
from digest.render.filters import why
from digest.send import send
from digest.store import Store
from digest.subscriptions import subscribe

from .conftest import FIXTURES

NOW = datetime(2025, 12, 31, 8, tzinfo=UTC)
needs_extra = pytest.mark.skipif(
    not encoder.all_installed(),
    reason="the semantic extra is not installed: pip install -e '.[semantic]'",
)


@needs_extra
def test_encoder_gives_sentence_transformers_vectors() -> None:
    """Reference vectors made once by sentence-transformers 6.2 + torch (CPU) from the same
    weights, at 128 and 256 word pieces (a text longer than both is among them)."""
    ref = json.loads((FIXTURES / "semantic" / "reference.json").read_text(encoding="utf-8"))
    for max_tokens, expected in ref["vectors"].items():
        got = encoder.load_encoder(int(max_tokens)).encode(ref["texts"], batch=2)
        assert np.abs(got - np.asarray(expected, np.float32)).max() < 1e-5
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


@needs_extra
def test_batches_in_threads_give_the_same_vectors() -> None:
    """`encode(..., workers=2)` (what ingest uses on 2 cores) runs batches at once: the
    same vectors, bit for bit, in the order given."""
    ref = json.loads((FIXTURES / "semantic" / "reference.json").read_text(encoding="utf-8"))
    texts = [*ref["texts"], "a short one", "speech synthesis"]
    model = encoder.load_encoder()
    one = model.encode(texts, batch=2)
    assert np.array_equal(model.encode(texts, batch=2, workers=2), one)
    assert np.array_equal(model.encode(texts[::-1], batch=2, workers=3), one[::-1])


def unit(*values: float) -> np.ndarray:
    v = np.zeros(dense.DIM, np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


def made_up_day(n: int = 40) -> tuple[list[Paper], dense.DenseDay]:
    """n papers, all near the "noise" direction but one (the last), which points where the
    keyword "speech synthesis" does; keywords embed by a table, not a model."""
    rng = np.random.default_rng(7)
    papers = [Paper(f"p{j}", f"Paper {j} about vision", "Images.") for j in range(n)]
    rows = [unit(1.0, *rng.normal(0, 0.1, 6)) for _ in range(n - 1)] + [
        unit(0.2, 0, 0, 0, 0, 0, 0, 1.0)
    ]
    table = {"speech synthesis": unit(0, 0, 0, 0, 0, 0, 0, 1.0), "vision": unit(1.0)}

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([table[t] for t in texts])

    return papers, dense.DenseDay(np.stack(rows), np.ones(n, bool), embed, "table")


def test_a_paper_far_above_the_days_background_comes_in_by_meaning() -> None:
    papers, day = made_up_day()
    profile = rank.make_profile("tts", ["speech synthesis"])
    prepared = rank.prepare(papers, NOW, dense=day)
    (ranked,) = rank.rank_prepared(prepared, [profile])
    assert [i.paper.id for i in ranked.items] == ["p39"]  # no word of it matches
    (item,) = ranked.items
    assert item.matches == (Match("speech synthesis", MEANING),) and item.by_meaning
    assert item.why == "by meaning: close in meaning to speech synthesis"
    assert why(item, "html") == "by meaning: close in meaning to speech synthesis"
    # without the layer, or with it turned off, nothing matches
    assert rank.rank_prepared(rank.prepare(papers, NOW), [profile])[0].items == ()
    off = rank.RankSettings(dense_credit=0.0)
    assert rank.rank_prepared(rank.prepare(papers, NOW, off, dense=day), [profile])[0].items == ()


def test_meaning_never_admits_papers_at_the_background_and_keeps_lexical_matches() -> None:
    papers, day = made_up_day()
    # "vision" is in every title: the day's background, so no paper stands out by meaning
    lexical = rank.rank(papers, [rank.make_profile("v", ["vision"])], NOW)[0]
    fused = rank.rank_prepared(
        rank.prepare(papers, NOW, dense=day), [rank.make_profile("v", ["vision"])]
    )[0]
    assert [i.paper.id for i in fused.items] == [i.paper.id for i in lexical]
    assert all(not m.by_meaning for i in fused.items for m in i.matches)


def test_fusion_rule() -> None:
    z = np.array([[0.0, 2.9, 3.0, 4.5, 30.0]], np.float32)
    m = dense.meaning_from_z(z, threshold=3.0, credit=0.5)
    assert m[0].tolist() == pytest.approx([0.0, 0.0, 0.5, 0.75, 0.99])
    import scipy.sparse as sp

    lexical = sp.csr_matrix(np.array([[0.6, 0.0, 0.0]], np.float32))
    meaning = sp.csr_matrix(np.array([[0.5, 0.5, 0.0]], np.float32))
    assert dense.fuse(lexical, meaning).toarray()[0].tolist() == pytest.approx([0.8, 0.5, 0.0])


def test_vectors_round_trip_as_float16_and_missing_ones_are_absent() -> None:
    v = unit(0.3, -0.4, 0.5)
    papers = [Paper("a", "A", ""), Paper("b", "B", ""), Paper("c", "C", "")]
    blobs = {"a": dense.encode_vector(v), "c": b"short"}
    got, present = dense.decode_vectors(papers, blobs)
    assert present.tolist() == [True, False, False]
    assert np.abs(got[0] - v).max() < 1e-3 and not got[1].any()


def test_dense_similarity_is_none_without_the_layer() -> None:
    _papers, day = made_up_day(5)
    assert dense.dense_similarity(None, ["vision"]) is None
    sim = dense.dense_similarity(day, ["speech synthesis"])
    assert sim is not None and sim.shape == (1, 5) and int(np.argmax(sim[0])) == 4


def tiny_day() -> list[Paper]:
    """24 papers on object detection and one that is about speech synthesis in other
    words (no word of "speech synthesis" in it). A day's z can reach only sqrt(n - 1)
    (4.9 here), so it holds more papers than the threshold needs."""
    return [
        Paper(
            f"v{j}",
            f"Object detection benchmark number {j}",
            "We detect objects in images.",
            first_seen=NOW,
            last_seen=NOW,
        )
        for j in range(24)
    ] + [
        Paper(
            "tts",
            "Neural voices that read text aloud",
            "A vocoder turns written sentences into natural sounding spoken audio.",
            first_seen=NOW,
            last_seen=NOW,
        )
    ]


@needs_extra
def test_embed_then_rank_by_meaning_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store made without the layer is filled by `digest embed`; `digest rank` then
    admits a paper none of whose words is a keyword, and `--explain` says so."""
    db = tmp_path / "s.sqlite3"
    papers = tiny_day()
    with Store(db) as store:
        store.add_papers(papers, arrived_at=NOW)
    runner = CliRunner()
    base = ["--db", str(db), "--now", NOW.isoformat()]
    monkeypatch.setenv("DIGEST_SEMANTIC", "off")
    off = runner.invoke(cli, [*base, "embed"])
    assert off.exit_code == 2 and "DIGEST_SEMANTIC=off" in off.output
    monkeypatch.delenv("DIGEST_SEMANTIC")
    done = runner.invoke(cli, [*base, "embed", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["embedded"] == 25
    again = runner.invoke(cli, [*base, "embed"])
    assert again.output.startswith("0 papers embedded, 25 had a vector already")
    got = runner.invoke(cli, [*base, "rank", "--all", "-k", "speech synthesis", "--json"])
    assert got.exit_code == 0, got.output
    assert [json.loads(line)["id"] for line in got.output.splitlines()] == ["tts"]
    told = runner.invoke(
        cli, [*base, "rank", "--all", "-k", "speech synthesis", "--explain", "tts"]
    )
    assert "by meaning" in told.output and "IN the digest" in told.output


def test_an_item_that_matched_words_and_meaning_says_both() -> None:
    item = DigestItem(
        Paper("p", "T", ""),
        0.5,
        (Match("LoRA", ("title",), ("LoRA",)), Match("adapters", MEANING)),
    )
    assert item.why == "matches LoRA (title); close in meaning to adapters"
    assert not item.by_meaning


@needs_extra
def test_a_sent_digest_says_by_meaning(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """`digest send` ranks with the stored vectors: the email holds the paper no keyword
    reaches, and its why-line says it came in by meaning."""
    monkeypatch.setenv("DIGEST_SECRET", "test-secret-0123456789abcdef-0123")
    monkeypatch.delenv("DIGEST_SEMANTIC")
    with Store(config.store_path) as store:
        store.add_papers(tiny_day(), arrived_at=NOW - timedelta(hours=2))
        assert embed_missing(store).embedded == 25
        spec = rank.make_profile("voices", ["speech synthesis"])
        subscribe(config, store, "ada@example.org", spec, NOW - timedelta(days=1), confirmed=True)
        backend = make_backend(config.delivery)
        assert send(config, store, backend, NOW).sent == 1
        backend.close()
    (eml,) = config.delivery.outbox_dir.glob("*.eml")
    body = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    text = body.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Neural voices that read text aloud" in text
    assert "by meaning: close in meaning to speech synthesis" in text
    assert "Object detection" not in text
    with Store(config.store_path) as store:  # the keyword's vector is kept: embedded once
        kept = store.keyword_vectors(["speech synthesis"], encoder.model_id())
    assert kept.keys() == {"speech synthesis"}


#: A paper about speech synthesis that shares no word with `tiny_day`'s "tts" paper.
LIKED = Paper(
    "liked",
    "Phoneme strings rendered as waveforms",
    "Waveform generators render phoneme strings.",
    first_seen=NOW - timedelta(days=7),
)


def _readers_who_liked(config: Config, *emails: str) -> None:
    """LIKED arrived last week, `tiny_day` two hours ago, all embedded; each reader, of a
    profile no paper's words reach ("zebrafish"), liked LIKED yesterday."""
    with Store(config.store_path) as store:
        store.add_papers([LIKED], arrived_at=NOW - timedelta(days=7))
        store.add_papers(tiny_day(), arrived_at=NOW - timedelta(hours=2))
        assert embed_missing(store).embedded == 26
        spec = rank.make_profile("zebrafish", ["zebrafish"])  # no paper has the word
        for who in emails:
            sub = subscribe(config, store, who, spec, NOW - timedelta(days=1), confirmed=True)
            assert store.rate(sub.subscriber.id, "liked", 1, NOW - timedelta(days=1))


@needs_extra
def test_a_send_reads_a_liked_papers_stored_vector(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `like_dense` on, `digest send` reads the stored vector of a paper the reader
    liked last week (not one of the day's): a paper that says the same thing in other
    words comes in by their ratings; with words alone it does not."""
    from dataclasses import replace

    monkeypatch.setenv("DIGEST_SECRET", "test-secret-0123456789abcdef-0123")
    monkeypatch.delenv("DIGEST_SEMANTIC")
    _readers_who_liked(config, "ada@example.org", "bob@example.org")
    words = replace(config, ranking=replace(config.ranking, like_dense=0.0))
    with Store(config.store_path) as store:
        plan = send(words, store, None, NOW, dry_run=True)
    assert (plan.due, plan.empty) == (2, 2)  # words alone: nothing for them today
    meant = replace(config, ranking=replace(config.ranking, like_dense=1.0))
    with Store(config.store_path) as store:
        backend = make_backend(meant.delivery)
        assert send(meant, store, backend, NOW).sent == 2
        backend.close()
    for eml in config.delivery.outbox_dir.glob("*.eml"):
        body = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
        text = body.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert "Neural voices that read text aloud" in text
        assert f"by your ratings (like: {LIKED.title})" in text
        assert "Object detection" not in text


@needs_extra
def test_previews_of_anonymous_keywords_keep_nothing(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web's previews rank what anyone types (`keep_keywords=False`): embedded for
    that ranking, never kept; a reader's preview keeps its keywords for later processes."""
    from digest import pipeline

    monkeypatch.delenv("DIGEST_SEMANTIC")
    with Store(config.store_path) as store:
        store.add_papers(tiny_day(), arrived_at=NOW - timedelta(hours=2))
        assert embed_missing(store).embedded == 25
        typed = rank.make_profile("anon", ["speech synthesis"])
        digest, _ = pipeline.preview(config, store, typed, NOW, "text", keep_keywords=False)
        assert [i.paper.id for s in digest.sections for i in s.items] == ["tts"]
        assert not store.keyword_vectors(["speech synthesis"], encoder.model_id())
        pipeline.preview(config, store, typed, NOW, "text")
        assert store.keyword_vectors(["speech synthesis"], encoder.model_id())


@needs_extra
def test_rank_explain_says_a_paper_came_in_by_ratings_by_meaning(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`digest rank --subscriber --explain` with `[ranking] like_dense` on reads the liked
    paper's stored vector as the send does (it arrived last week: not one of the day's
    papers ranked here), and says the paper came in by the ratings."""
    from .test_cli import invoke

    monkeypatch.delenv("DIGEST_SEMANTIC")
    config_file = project / "config.toml"
    config_file.write_text(config_file.read_text() + "\n[ranking]\nlike_dense = 1.0\n")
    from digest.config import load_config

    _readers_who_liked(load_config(config_file, required=True), "ada@example.org")
    at = NOW.isoformat()
    code, out, _ = invoke(
        project, "rank", "--subscriber", "ada@example.org", "--explain", "tts", now=at
    )
    assert code == 0 and "IN the digest" in out, out
    assert f"by your ratings (like: {LIKED.title})" in out
    config_file.write_text(config_file.read_text().replace("like_dense = 1.0", "like_dense = 0"))
    code, out, _ = invoke(
        project, "rank", "--subscriber", "ada@example.org", "--explain", "tts", now=at
    )
    assert code == 0 and "OUT" in out, out  # by its words alone the like reaches nothing
