"""The batched ranker's fast paths give what the plain code of b6213ff gave, item by item.

`compile_profiles` (keywords read in C loops, plans numbered by numpy), `select` (its
steps on flat arrays, vetoes through a bitmap, chunks split over forked processes) and
`build_index` (papers analysed in forked processes) are checked against the code they
replaced, kept here as the oracle, on a realistic synthetic day (bench/rank.py's: seed
sentences and titles, keywords from the acronym table and the seeds' vocabulary, quoted,
weighted and excluded ones), with per-profile min_score and max_items, windows and
ledgers mixed in, and small chunks so that many chunks are cut.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from digest.model import Keyword, Paper, Profile
from digest.rank.analyzer import Analyzer
from digest.rank.cutoff import thresholds
from digest.rank.fork import can_fork, fork_map
from digest.rank.index import build_index
from digest.rank.query import KeywordPlan, compile_keyword
from digest.rank.score import (
    Compiled,
    Selections,
    compile_profiles,
    keyword_scores,
    lookup,
    paper_priors,
)
from digest.rank.select import _contenders, select
from digest.rank.settings import RankSettings

NOW = datetime(2025, 10, 17, 6, 0)
BENCH = Path(__file__).resolve().parent.parent / "bench" / "rank.py"


@pytest.fixture(scope="module")
def day() -> tuple[list[Paper], list[Profile]]:
    spec = importlib.util.spec_from_file_location("bench_rank", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    papers, profiles = bench.synthetic_day(200, 1500)
    mixed = [
        replace(
            p,
            min_score=0.3 if i % 7 == 0 else p.min_score,
            max_items=3 if i % 5 == 0 else (None if i % 11 == 0 else p.max_items),
        )
        for i, p in enumerate(profiles)
    ]
    return papers, mixed


def _old_compile(
    profiles: Sequence[Profile], analyzer: Analyzer, settings: RankSettings
) -> Compiled:
    """compile_profiles of b6213ff: one Python pass a profile."""
    plan_of: dict[tuple[str, bool], int] = {}
    plans: list[KeywordPlan | None] = []

    def plan_id(text: str, phrase: bool) -> int:
        got = plan_of.get((text, phrase))
        if got is None:
            got = plan_of[(text, phrase)] = len(plans)
            plans.append(compile_keyword(Keyword(text, phrase), analyzer, settings.exact_share))
        return got

    w_rows, w_cols, w_vals, e_rows, e_cols, per_profile = [], [], [], [], [], []
    for i, profile in enumerate(profiles):
        ids, live = [], []
        for kw in profile.keywords:
            pid = plan_id(kw.text, kw.phrase)
            ids.append(pid if plans[pid] is not None else -1)
            if plans[pid] is not None and kw.weight > 0:
                live.append((pid, kw.weight))
        top = max((w for _, w in live), default=1.0)
        for pid, w in live:
            w_rows.append(i)
            w_cols.append(pid)
            w_vals.append(w / top)
        for kw in profile.exclude:
            pid = plan_id(kw.text, kw.phrase)
            if plans[pid] is not None:
                e_rows.append(i)
                e_cols.append(pid)
        per_profile.append(ids)
    shape = (len(profiles), len(plans))
    weights = sp.csr_matrix((np.asarray(w_vals, np.float32), (w_rows, w_cols)), shape=shape)
    excludes = sp.csr_matrix((np.ones(len(e_rows), np.float32), (e_rows, e_cols)), shape=shape)
    weights.sum_duplicates()
    excludes.sum_duplicates()
    texts = [""] * len(plans)
    for (text, _), pid in plan_of.items():
        texts[pid] = text
    return Compiled(plans, weights, excludes, per_profile, texts)  # type: ignore[arg-type]


def _old_select(
    compiled: Compiled,
    scores: sp.csr_matrix,
    vetoes: sp.csr_matrix,
    profiles: Sequence[Profile],
    prior: np.ndarray,
    settings: RankSettings,
    excluded: sp.csr_matrix | None,
    first_column: np.ndarray | None,
) -> Selections:
    """select of b6213ff: every step on the chunk's pairs, vetoes looked up pair by pair."""
    log_miss = scores.copy()
    log_miss.data = np.log1p(-log_miss.data)
    floors = np.array([max(settings.min_score_of(p), 1e-6) for p in profiles], np.float32)
    limits_all = np.array([settings.max_items_of(p) for p in profiles], np.int64)
    own_all = np.array([np.nan if p.min_score is None else 0.0 for p in profiles])
    chunk = settings.profile_chunk
    counts, cols_out, rel_out, score_out, passed = [], [], [], [], []
    for lo in range(0, len(profiles), chunk):
        hi = min(lo + chunk, len(profiles))
        log_rel = (compiled.weights[lo:hi] @ log_miss).tocsr()
        rows = np.repeat(np.arange(hi - lo), np.diff(log_rel.indptr))
        idx = np.flatnonzero(log_rel.data <= np.log1p(-floors[lo:hi])[rows])
        rows, cols, rv = rows[idx], log_rel.indices[idx], -np.expm1(log_rel.data[idx])
        ex = compiled.excludes[lo:hi]
        hit = lookup((ex @ vetoes).tocsr(), rows, cols) > 0
        rows, cols, rv = rows[~hit], cols[~hit], rv[~hit]
        if first_column is not None:
            keep = cols >= first_column[lo:hi][rows]
            rows, cols, rv = rows[keep], cols[keep], rv[keep]
        if len(rows):
            best = np.zeros(hi - lo, dtype=np.float32)
            np.maximum.at(best, rows, rv)
            keep = rv >= thresholds(best, own_all[lo:hi], 0.0, settings.cutoff_ratio)[rows]
            rows, cols, rv = rows[keep], cols[keep], rv[keep]
        if excluded is not None:
            keep = lookup(excluded[lo:hi], rows, cols) == 0
            rows, cols, rv = rows[keep], cols[keep], rv[keep]
        sc = rv * prior[cols]
        passed.append(np.bincount(rows, minlength=hi - lo))
        rows, cols, rv, sc = _contenders(rows, cols, rv, sc, limits_all[lo:hi])
        order = np.argsort(rows + (1.0 - sc.astype(np.float64)) * 0.5, kind="stable")
        rows, cols, rv, sc = rows[order], cols[order], rv[order], sc[order]
        rank_in_row = np.arange(len(rows)) - np.searchsorted(rows, np.arange(hi - lo))[rows]
        take = rank_in_row < limits_all[lo:hi][rows]
        counts.append(np.bincount(rows[take], minlength=hi - lo))
        cols_out.append(cols[take].astype(np.int64))
        rel_out.append(rv[take].astype(np.float64))
        score_out.append(sc[take].astype(np.float64))
    offsets = np.zeros(len(profiles) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(counts), out=offsets[1:])
    return Selections(
        offsets,
        np.concatenate(cols_out),
        np.concatenate(rel_out),
        np.concatenate(score_out),
        np.concatenate(passed),
    )


def _same(a: Selections, b: Selections) -> None:
    assert np.array_equal(a.offsets, b.offsets)
    assert np.array_equal(a.papers, b.papers)
    assert np.array_equal(a.matched, b.matched)
    assert np.abs(a.relevance - b.relevance).max(initial=0) <= 1e-9
    assert np.abs(a.score - b.score).max(initial=0) <= 1e-9


@dataclass(frozen=True)
class Batch:
    profiles: list[Profile]
    compiled: Compiled
    scores: sp.csr_matrix
    vetoes: sp.csr_matrix
    prior: np.ndarray
    settings: RankSettings


@pytest.fixture(scope="module")
def batch(day: tuple[list[Paper], list[Profile]]) -> Batch:
    papers, profiles = day
    settings, analyzer = RankSettings(profile_chunk=200), Analyzer()
    compiled = compile_profiles(profiles, analyzer, settings)
    index = build_index(papers, analyzer, settings)
    scores, phrase = keyword_scores(compiled.plans, index, settings)
    vetoes = phrase.copy()
    vetoes.data[:] = 1.0
    pop, rec = paper_priors(papers, NOW, settings)
    prior = (0.9 + 0.05 * pop + 0.05 * rec).astype(np.float32)
    return Batch(profiles, compiled, scores, vetoes, prior, settings)


def test_compile_profiles_gives_the_old_matrices(batch: Batch) -> None:
    analyzer, settings, profiles = Analyzer(), batch.settings, batch.profiles
    new, old = batch.compiled, _old_compile(profiles, analyzer, settings)
    for name in ("weights", "excludes"):
        a, b = getattr(new, name), getattr(old, name)
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
        assert np.array_equal(a.data, b.data)
    assert new.plans == old.plans and new.texts == old.texts
    assert [new.keyword_plans[i] for i in range(len(profiles))] == old.keyword_plans
    assert new.keyword_plans[-1] == old.keyword_plans[-1]
    with pytest.raises(IndexError):
        new.keyword_plans[len(profiles)]
    assert compile_profiles([], analyzer, settings).weights.shape == (0, 0)


@pytest.mark.parametrize("workers", [1, 2])
def test_select_gives_the_old_selections(batch: Batch, workers: int) -> None:
    b = batch
    rng = np.random.default_rng(5)
    n, m = b.scores.shape[1], len(b.profiles)
    first = np.where(rng.random(m) < 0.3, rng.integers(0, n, m), 0)
    ledger = sp.random(m, n, density=0.02, format="csr", random_state=6, dtype=np.float32)
    assert b.compiled.excludes.nnz > 100  # the vetoes are exercised
    for extra in [(None, None), (ledger, first)]:
        args = (b.compiled, b.scores, b.vetoes, b.profiles, b.prior, b.settings, *extra)
        want = _old_select(*args)
        assert want.papers.size > 1000 and (np.diff(want.offsets) < want.matched).any()
        # exact ties in score, broken by the product's order of the pairs
        assert (np.diff(want.score) == 0).sum() > 10
        _same(select(*args, workers=workers), want)


def test_the_veto_lookup_without_a_bitmap_agrees(
    batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `_BITMAP_CELLS` the vetoes are looked up pair by pair: the same answer."""
    import digest.rank.select as select_module

    b = batch
    want = select(b.compiled, b.scores, b.vetoes, b.profiles, b.prior, b.settings)
    monkeypatch.setattr(select_module, "_BITMAP_CELLS", 0)
    _same(select(b.compiled, b.scores, b.vetoes, b.profiles, b.prior, b.settings), want)
    empty = sp.csr_matrix(b.compiled.excludes.shape, dtype=np.float32)
    unvetoed = select(
        replace(b.compiled, excludes=empty), b.scores, b.vetoes, b.profiles, b.prior, b.settings
    )
    assert unvetoed.matched.sum() > want.matched.sum()


def test_an_index_analysed_in_two_processes_is_the_same(day: tuple[list, list]) -> None:
    papers = day[0][:80]
    analyzer, settings = Analyzer(), RankSettings()
    one, two = (build_index(papers, analyzer, settings, workers=w) for w in (1, 2))
    assert one.vocab == two.vocab and list(one.vocab) == list(two.vocab)
    for name in ("sat", "in_title", "in_abstract"):
        a, b = getattr(one, name), getattr(two, name)
        assert (a != b).nnz == 0 and np.array_equal(a.indices, b.indices)
    assert np.array_equal(one.idf, two.idf)


def test_fork_map_keeps_order_and_reruns_what_a_child_could_not_do() -> None:
    parts = list(range(7))
    assert fork_map(lambda k: k * k, parts, 3) == [k * k for k in parts]
    assert fork_map(lambda k: k, [], 2) == []
    if can_fork():  # under a threaded test runner the work runs here, in order
        pids = fork_map(lambda k: os.getpid(), parts, 2)
        assert pids[0] == os.getpid() and set(pids[1:]) - {os.getpid()}

    def fails_in_children(k: int) -> int:
        if os.getpid() != parent:
            raise RuntimeError("child")
        return k

    parent = os.getpid()
    assert fork_map(fails_in_children, parts, 2) == parts  # rerun here

    def fails(k: int) -> int:
        raise ValueError(k)

    with pytest.raises(ValueError):
        fork_map(fails, parts, 2)
