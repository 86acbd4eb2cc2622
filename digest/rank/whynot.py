"""Why a paper is or is not in a profile's digest, and what came just under the cut-off.

    audit(prepared, profile, sent) -> Audit      (pure: no I/O, no clock)
    Audit.verdict(paper_id) -> Verdict           how it scored per keyword, which rule
    Audit.below(n) -> list[Verdict]              the next n papers under the cut

No second implementation of scoring: the per-keyword scores are `score.keyword_scores`,
relevance and order come from `select.select` itself, run with the profile's cut opened
(min_score 0, max_items all papers) so every matching paper shows, then the profile's own
min_score and max_items are applied to that list in its order: exactly the cut `select`
makes (the same stable order, the same tests), so "in" here is "in the digest".

The rules, in the order `select` applies them: an exclusion vetoes the paper; it was sent
to the reader before (their ledger); its relevance is below min_score; max_items papers
scored better.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from digest.keywords import format_keyword
from digest.model import Paper, Profile
from digest.rank.cutoff import cut
from digest.rank.learn import Rated, augment
from digest.rank.ranker import Prepared, _excluded, keyword_evidence
from digest.rank.score import Selections, compile_profiles, lookup
from digest.rank.select import select

#: Why a paper is out, by rule; "in" when it is in the digest.
IN, EXCLUDED, SENT, BELOW, PAST = (
    "in",
    "excluded",
    "already sent",
    "below the cut-off",
    "past max_items",
)


@dataclass(frozen=True, slots=True)
class KeywordScore:
    """How one keyword of the profile scored against the paper."""

    keyword: str  #: as typed (`format_keyword`)
    weight: float  #: relative to the profile's heaviest keyword (1.0 for it)
    score: float  #: s(k, p) in [0, 1); 0 when it does not match
    #: the part of `score` that is by meaning (the semantic layer, `rank.dense`): the
    #: evidence the paper's closeness to the keyword gave; 0 without the layer
    meaning: float = 0.0
    #: True when `score` came from the keyword's related terms alone (`rank.related`):
    #: none of its words is in the paper, terms the stored papers use with it are
    by_related: bool = False

    @property
    def by_meaning(self) -> bool:
        """True when the keyword matched by meaning alone (none of its words)."""
        return self.meaning > 0 and self.lexical == 0

    @property
    def lexical(self) -> float:
        """The part of `score` that is by the keyword's words."""
        return (
            round(max(0.0, 1 - (1 - self.score) / (1 - self.meaning)), 6)
            if self.meaning
            else self.score
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the ranker made of one paper for one profile."""

    paper: Paper
    outcome: str  #: IN, or the first rule that kept it out
    rules: tuple[str, ...]  #: every rule that keeps it out, in `select`'s order ((): in)
    relevance: float  #: what min_score is tested on, in [0, 1]
    score: float  #: relevance blended with popularity and recency: the digest's order
    keywords: tuple[KeywordScore, ...]
    vetoed_by: tuple[str, ...]  #: the exclusions that match it
    #: 1-based place among the papers that pass every rule but max_items; None if it fails one
    place: int | None
    min_score: float  #: the relevance the profile needed today (the cut-off's threshold)
    max_items: int
    cut_reason: str  #: the cut-off's rule in words (`cutoff.cut`)
    #: The liked paper (title) the reader's ratings found it like, when they lifted it.
    liked: str | None = None


@dataclass(frozen=True, slots=True)
class Audit:
    """One profile's ranking over the prepared papers, opened up for questions."""

    prepared: Prepared
    profile: Profile
    sent: frozenset[str]
    _relevance: dict[int, tuple[float, float]]  #: column -> (relevance, score), no rules
    _eligible: list[int]  #: columns not vetoed nor sent, in the digest's order
    _places: dict[int, int]  #: column -> place among eligible papers passing min_score
    _keywords: tuple[KeywordScore, ...]  #: the profile's keywords (score unset)
    _plans: tuple[int, ...]  #: plan id of each keyword (-1: matches nothing)
    _vetoes: tuple[tuple[str, int], ...]  #: (exclusion as typed, plan id)
    _scores: sp.csr_matrix  #: the fused evidence `select` ranks on
    _phrase: sp.csr_matrix
    _meaning: sp.csr_matrix | None  #: the semantic layer's part of it (None: off)
    threshold: float  #: the relevance a paper needs today: `select`'s own cut-off
    cut_reason: str  #: that cut-off's rule in words, e.g. "below 0.5 x the day's best ..."
    _lifted: dict[int, str]  #: column -> the liked paper's title, where ratings lifted it
    #: 1 where a plan's evidence came from its related terms alone (None: bridges off)
    _related: sp.csr_matrix | None = None

    @property
    def min_score(self) -> float:
        """The relevance a paper needs today (the profile's min_score where it has one,
        else the day's cut-off: `cutoff.cut`)."""
        return self.threshold

    @property
    def max_items(self) -> int:
        """The profile's max_items (its own, or the default)."""
        return self.prepared.settings.max_items_of(self.profile)

    def verdict(self, paper_id: str) -> Verdict | None:
        """The verdict on one paper; None when it is not among the prepared papers."""
        column = self.prepared.column.get(paper_id)
        return None if column is None else self._verdict(column)

    def below(self, n: int) -> list[Verdict]:
        """The next `n` papers under the cut, in the digest's order: not vetoed, not sent,
        but below min_score or past max_items."""
        out = [self._verdict(c) for c in self._eligible]
        return [v for v in out if v.outcome != IN][: max(n, 0)]

    def _verdict(self, column: int) -> Verdict:
        floor, limit = self.min_score, self.max_items
        paper = self.prepared.papers[column]
        relevance, score = self._relevance.get(column, (0.0, 0.0))
        cols = np.full(len(self._plans), column, np.int64)
        plan_ids = np.maximum(np.asarray(self._plans, np.int64), 0)
        got = lookup(self._scores, plan_ids, cols)
        meant = (
            lookup(self._meaning, plan_ids, cols)
            if self._meaning is not None
            else np.zeros(len(plan_ids), np.float32)
        )
        bridged = (
            lookup(self._related, plan_ids, cols) > 0
            if self._related is not None
            else np.zeros(len(plan_ids), bool)
        )
        keywords = tuple(
            replace(k, score=round(float(s), 6), meaning=round(float(m), 6), by_related=bool(b))
            if pid >= 0
            else k
            for k, s, m, b, pid in zip(
                self._keywords, got, meant, bridged, self._plans, strict=True
            )
        )
        vetoed_by = tuple(
            text
            for text, pid in self._vetoes
            if lookup(self._phrase, np.array([pid]), np.array([column]))[0] > 0
        )
        place = self._places.get(column)
        rules = [
            rule
            for rule, applies in (
                (EXCLUDED, bool(vetoed_by)),
                (SENT, paper.id in self.sent),
                (BELOW, relevance < max(floor, 1e-6)),
                (PAST, place is not None and place > limit),
            )
            if applies
        ]
        return Verdict(
            paper,
            rules[0] if rules else IN,
            tuple(rules),
            round(relevance, 6),
            round(score, 6),
            keywords,
            vetoed_by,
            place,
            floor,
            limit,
            self.cut_reason,
            self._lifted.get(column),
        )


def audit(
    prepared: Prepared,
    profile: Profile,
    sent: Collection[str] = (),
    rated: Sequence[Rated] = (),
) -> Audit:
    """Rank `profile` on `prepared` with its cut opened, keeping what explains the cut.

    `sent`: paper ids the reader got before (what the planner passes as exclude_ids);
    `rated`: the papers the reader rated for this profile (`learn`): their taste is one
    more term, listed with the keywords, and they never come back (as sent ones).
    """
    papers, settings = prepared.papers, prepared.settings
    # The exclusions as a second profile's keywords: their plan ids, in the same plans.
    vetoing = Profile("exclusions", profile.exclude)
    compiled = compile_profiles([profile, vetoing], prepared.analyzer, settings, prepared.related)
    evidence = keyword_evidence(prepared, compiled)
    scores = evidence.fused
    vetoes = evidence.phrase.copy()
    vetoes.data[:] = 1.0
    learned = augment(prepared, compiled, scores, vetoes, [rated, ()]) if rated else None
    lifted: dict[int, str] = {}
    if learned is not None:
        compiled, scores, vetoes = learned.compiled, learned.scores, learned.vetoes
        sent = {*sent, *(r.paper.id for r in rated)}
        lifted = learned.taste.lifted[0]
    opened = [replace(profile, min_score=0.0, max_items=max(len(papers), 1))]
    unruled = replace(compiled, excludes=sp.csr_matrix(compiled.excludes.shape, dtype=np.float32))
    sense = evidence.sense
    every = select(unruled, scores, vetoes, opened, prepared.prior, settings, sense=sense)
    ledger = _excluded(prepared, [set(sent)])
    eligible = select(
        compiled, scores, vetoes, opened, prepared.prior, settings, ledger, sense=sense
    )
    # The day's bar, as `select` sets it: over the papers not vetoed (sent ones count).
    unvetoed = _by_column(
        select(compiled, scores, vetoes, opened, prepared.prior, settings, sense=sense)
    )
    rel = np.array([r for r, _ in unvetoed.values()], np.float32)
    day = cut(rel, settings, profile.min_score, len(rel) + 1)  # the bar alone, no cap
    floor = max(day.threshold, 1e-6)
    relevance = _by_column(every)
    order = [int(c) for c in eligible.papers[eligible.of(0)]]
    passing = [c for c in order if relevance[c][0] >= floor]
    weights = compiled.weights.getrow(0).toarray()[0]
    plans = tuple(compiled.keyword_plans[0])
    keywords = tuple(
        KeywordScore(format_keyword(kw), round(float(weights[pid]), 6) if pid >= 0 else 0.0, 0.0)
        for kw, pid in zip(profile.keywords, plans, strict=True)
    )
    if learned is not None:  # the ratings' term, scored like a keyword (it may be < 0)
        likes = sum(r.vote > 0 for r in rated)
        label = f"your ratings ({likes} liked, {len(rated) - likes} disliked)"
        keywords += (KeywordScore(label, 1.0, 0.0),)
        plans += (len(compiled.plans) - 1,)
    exclusions = tuple(
        (format_keyword(kw), pid)
        for kw, pid in zip(profile.exclude, compiled.keyword_plans[1], strict=True)
        if pid >= 0
    )
    return Audit(
        prepared,
        profile,
        frozenset(sent),
        relevance,
        order,
        {c: i + 1 for i, c in enumerate(passing)},
        keywords,
        plans,
        exclusions,
        scores,
        vetoes,
        evidence.meaning,
        floor,
        _below_reason(day.reason, profile.min_score, floor),
        lifted,
        evidence.related,
    )


def _below_reason(reason: str, own: float | None, threshold: float) -> str:
    """What a paper under the bar is below, in words (the cut's own reason, unless the
    bar left nothing out today)."""
    if reason.startswith("below"):
        return reason
    if own is not None:
        return f"below the profile's min_score {own:.2f}"
    return f"below the day's cut-off {threshold:.2f}"


def _by_column(chosen: Selections) -> dict[int, tuple[float, float]]:
    where = chosen.of(0)
    return {
        int(c): (float(r), float(s))
        for c, r, s in zip(
            chosen.papers[where], chosen.relevance[where], chosen.score[where], strict=True
        )
    }
