"""Vocabulary bridges (`rank.related`): related terms learned from a corpus, kept by the
store, admitting papers that say a keyword in other words, and saying so."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from digest.cli import cli
from digest.model import RELATED, Paper
from digest.rank import RankSettings, make_profile, prepare, rank_prepared
from digest.rank.analyzer import analyzer_for
from digest.rank.related import RelatedTerms, learn, paper_features
from digest.rank.terms import terms_key
from digest.store import Store

from .factories import make_paper

NOW = datetime(2025, 10, 17, 6, 0, tzinfo=UTC)
ON = replace(RankSettings(), related_credit=0.9, min_evidence=0.1)


def paper(pid: str, title: str, abstract: str) -> Paper:
    return make_paper(title, abstract, id=pid, sources=())


def corpus() -> list[Paper]:
    """Papers on distillation that say "teacher" and "student" with it, others that do not."""
    kd = [
        paper(
            f"kd{i}",
            f"Knowledge distillation for task {i}",
            "A student network learns from a teacher network by knowledge distillation.",
        )
        for i in range(4)
    ]
    other = [
        paper(f"o{i}", f"Graph networks {i}", "Message passing over graphs, with benchmarks.")
        for i in range(60)
    ]
    return [*kd, *other]


def table_of(papers: list[Paper]) -> RelatedTerms:
    analyzer, memo = analyzer_for(None), dict[str, bool]()
    return learn([paper_features(p, analyzer, memo) for p in papers], min_papers=3)


def test_terms_the_papers_use_with_a_keyword_are_related_to_it() -> None:
    table = table_of(corpus())
    related = dict(table.neighbours(["≡kd"]))
    assert {"teacher", "student"} <= related.keys()
    assert all(0 < r <= 1 for r in related.values())
    assert "graph" not in related  # never with the keyword
    assert not {"a", "by", "astud", "froma"} & related.keys()  # function words say nothing
    assert table.papers == 64


def test_a_paper_that_says_the_keyword_in_other_words_comes_in_by_related_terms() -> None:
    papers = corpus()
    new = paper("new", "Compact models", "The student imitates the teacher outputs.")
    unrelated = paper("far", "Compact graphs", "Message passing with fewer edges.")
    day = [*papers, new, unrelated]
    profile = make_profile("kd", ["knowledge distillation"], min_score=0.0)
    table = table_of(papers)
    off = rank_prepared(prepare(day, NOW, RankSettings(), related=table), [profile])[0]
    on = rank_prepared(prepare(day, NOW, ON, related=table), [profile])[0]
    assert "new" not in [i.paper.id for i in off.items]
    got = {i.paper.id: i for i in on.items}
    assert "new" in got and "far" not in got
    (match,) = got["new"].matches
    assert match.fields == RELATED and match.by_related
    assert {w.casefold() for w in match.words} <= {"student", "teacher"} and match.words
    assert "(related) for knowledge distillation" in got["new"].why
    # a paper with the keyword's own words still beats one that has only related terms
    assert got["kd0"].score > got["new"].score
    assert not any(m.by_related for m in got["kd0"].matches)


def test_without_a_table_or_with_credit_0_the_ranking_is_the_words_alone() -> None:
    day = [*corpus(), paper("new", "Compact models", "The student imitates the teacher.")]
    profile = make_profile("kd", ["knowledge distillation"], min_score=0.0)
    plain = rank_prepared(prepare(day, NOW, RankSettings()), [profile])[0]
    off = rank_prepared(prepare(day, NOW, RankSettings(), related=table_of(day)), [profile])[0]
    assert off == plain


def test_the_store_keeps_the_table_under_its_key(tmp_path: Path) -> None:
    table = table_of(corpus())
    with Store(tmp_path / "s.sqlite3") as store:
        assert store.related_terms("k", ["≡kd"]) == ([], 0)
        n = store.keep_related_terms("k", table.rows(), table.papers, NOW)
        assert n == len(table.rows())
        rows, papers = store.related_terms("k", ["≡kd", "nothing"])
        assert papers == 64
        assert RelatedTerms.from_rows(rows, papers).neighbours(["≡kd"]) == table.neighbours(["≡kd"])
        assert store.related_terms("other", ["≡kd"]) == ([], 0)
        store.keep_related_terms("k", [("a", "b", 0.5)], 2, NOW)  # replaces the table
        assert store.related_terms("k", None) == ([("a", "b", 0.5)], 2)


def test_an_upgraded_store_has_the_tables_and_keeps_its_rows(tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "store" / "v16.sqlite3"
    path = tmp_path / "v16.sqlite3"
    path.write_bytes(fixture.read_bytes())
    with Store(path) as store:
        store.keep_related_terms("k", [("a", "b", 0.5)], 2, NOW)
        assert store.related_terms("k", ["a"]) == ([("a", "b", 0.5)], 2)
        assert store.count_papers() > 0
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM day_index").fetchone()[0] == 1
    db.close()


def test_digest_related_learns_from_the_stored_papers(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    with Store(db) as store:
        store.add_papers(corpus())
    runner = CliRunner()
    got = runner.invoke(cli, ["--db", str(db), "--now", NOW.isoformat(), "related", "--json"])
    assert got.exit_code == 0, got.output
    assert '"papers": 64' in got.output
    with Store(db) as store:
        rows, papers = store.related_terms(terms_key(None), None)
    assert papers == 64
    assert RelatedTerms.from_rows(rows, papers) == table_of(corpus())


def sense_day() -> list[Paper]:
    """ "mixture" mostly as a mixture of experts; "data mixture" in a few papers."""
    moe = [
        paper(f"moe{i}", f"Sparse mixture of experts {i}", "Experts routed per token.")
        for i in range(6)
    ]
    mix = [
        paper(f"mix{i}", f"Tuning the data mixture {i}", "We weigh domains of the data mixture.")
        for i in range(3)
    ]
    filler = [paper(f"f{i}", f"Graph networks {i}", "Message passing on data.") for i in range(20)]
    return [*moe, *mix, *filler]


def relevance(day: list[Paper], keywords: list[str], floor: float) -> dict[str, float]:
    settings = replace(RankSettings(), sense_floor=floor, default_max_items=100)
    profile = make_profile("p", keywords, min_score=0.0)
    (got,) = rank_prepared(prepare(day, NOW, settings), [profile])
    return {i.paper.id: i.score for i in got.items}


def test_an_ambiguous_word_alone_counts_less_unless_the_paper_shows_the_profiles_sense() -> None:
    plain = paper("plain", "Mixture models for routing", "A mixture of experts.")
    with_context = paper(
        "context", "Mixture models for routing", "A mixture, chosen by data selection."
    )
    day = [*sense_day(), plain, with_context]
    keywords = ["data mixture", "data selection"]
    off, on = relevance(day, keywords, 1.0), relevance(day, keywords, 0.2)
    assert on["plain"] < 0.6 * off["plain"]  # "mixture" alone: mostly experts here
    # the profile's other keyword as a whole shows the profile's sense: it loses less
    assert on["context"] / off["context"] > 0.85 > on["plain"] / off["plain"]
    # the keyword as a whole is never doubted
    assert on["mix0"] == off["mix0"]


def test_a_word_that_stands_for_its_keyword_is_not_doubted() -> None:
    day = [
        *[
            paper(f"mu{i}", f"Machine unlearning {i}", "Machine unlearning of data.")
            for i in range(4)
        ],
        *[paper(f"m{i}", f"Machine translation {i}", "Translation by machine.") for i in range(8)],
        *[paper(f"f{i}", f"Graph networks {i}", "Message passing.") for i in range(20)],
        paper("llm", "LLM unlearning", "Unlearning for language models."),
        paper("mt", "Machine translation again", "A machine translates."),
    ]
    off, on = (
        relevance(day, ["machine unlearning"], 1.0),
        relevance(day, ["machine unlearning"], 0.2),
    )
    lost_llm, lost_mt = on.get("llm", 0) / off["llm"], on.get("mt", 0) / off.get("mt", 1)
    assert lost_llm > lost_mt  # "unlearning" comes with "machine unlearning", "machine" not


def test_rank_and_its_explanation_say_a_paper_came_in_by_related_terms(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[store]\npath = "s.sqlite3"\n\n[ranking]\nrelated_credit = 0.9\n', encoding="utf-8"
    )
    new = paper("new", "Compact models", "The student imitates the teacher outputs.")
    with Store(tmp_path / "s.sqlite3") as store:
        store.add_papers([*corpus(), new])

    def run(*args: str) -> str:
        config = ["--config", str(tmp_path / "config.toml"), "--now", NOW.isoformat()]
        got = CliRunner().invoke(cli, [*config, *args])
        assert got.exit_code == 0, got.output
        return got.stdout

    before = run("rank", "-k", "knowledge distillation", "--all")
    assert "Compact models" not in before  # no table yet: the words alone
    assert run("related").startswith("related terms of ")
    shown = run("rank", "-k", "knowledge distillation", "--all")
    assert "Compact models" in shown
    assert "(related) for knowledge distillation" in shown
    why = run("rank", "-k", "knowledge distillation", "--all", "--explain", "new")
    assert "by related terms" in why


def test_a_planner_that_indexes_the_arrivals_itself_reads_the_related_terms() -> None:
    from digest.plan import Due, plan_digests

    from .test_plan import reader

    new = paper("new", "Compact models", "The student imitates the teacher outputs.")
    arrivals = list(enumerate([*corpus(), new], start=1))
    kd = make_profile("kd", ["knowledge distillation"], min_score=0.0)
    due = [Due(reader(1, profiles=(kd,)), NOW.date(), 0, NOW - timedelta(days=1))]

    def planned(related: RelatedTerms | None) -> set[str]:
        got, _ = plan_digests(
            due, arrivals, {}, NOW, settings=ON, synonyms=None, title="t", related=related
        )
        return set(got[0].paper_ids)

    assert "new" not in planned(None)
    assert "new" in planned(table_of(corpus()))


def test_relearning_the_table_ranks_the_archive_again_while_bridges_are_on(
    tmp_path: Path,
) -> None:
    from digest.config import load_config
    from digest.pipeline import publish

    config_path = tmp_path / "config.toml"
    config_path.write_text(
        '[store]\npath = "s.sqlite3"\n\n[ranking]\nrelated_credit = 0.9\n\n'
        '[[profiles]]\nname = "kd"\nkeywords = ["knowledge distillation"]\nmin_score = 0.0\n',
        encoding="utf-8",
    )
    config = load_config(config_path)
    site = tmp_path / "site"
    new = paper("new", "Compact models", "The student imitates the teacher outputs.")

    def kd_day_picks() -> str:  # the profile's months list its picks alone
        months = sorted((site / "profiles" / "kd").glob("*.html"))
        return "".join(m.read_text(encoding="utf-8") for m in months)

    with Store(tmp_path / "s.sqlite3") as store:
        store.add_papers([*corpus()[4:], new])  # no distillation papers yet
        store.keep_related_terms(terms_key(None), *_table_rows(corpus()[4:]), NOW)
        first = publish(config, store, NOW, out_dir=site)
        assert first.ranked_days == 1 and "Compact models" not in kd_day_picks()
        assert publish(config, store, NOW, out_dir=site).ranked_days == 0
        learned = table_of(corpus())  # the table relearned from more papers
        store.keep_related_terms(terms_key(None), learned.rows(), learned.papers, NOW)
        again = publish(config, store, NOW, out_dir=site)
        assert again.ranked_days == 1 and "Compact models" in kd_day_picks()


def _table_rows(papers: list[Paper]) -> tuple[list[tuple[str, str, float]], int]:
    table = table_of(papers)
    return table.rows(), table.papers
