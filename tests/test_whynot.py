"""`digest rank --explain` / `--show-below`: the audit agrees with the ranker's own digest
for every seed paper, and the CLI says which rule kept a paper out, in text and JSON."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from digest.config import load_config
from digest.model import Claim, Paper, Profile
from digest.rank import make_profile, prepare, rank_prepared
from digest.rank.ranker import Prepared
from digest.rank.whynot import BELOW, EXCLUDED, IN, PAST, SENT, audit
from digest.store import Store
from digest.subscriptions import subscribe

from .conftest import SEED_ARRIVAL, SeededTemplate
from .test_cli import invoke

AFTER_SEEDS = SEED_ARRIVAL + timedelta(hours=2)


@pytest.fixture(scope="module")
def project(
    seeded_template: SeededTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    root = seeded_template.copy_to(tmp_path_factory.mktemp("whynot"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def prepared(project: Path) -> Prepared:
    config = load_config(project / "config.toml", required=True)
    with Store(config.store_path) as store:
        papers = store.papers()
    return prepare(papers, AFTER_SEEDS, config.ranking)


PROFILES = [
    make_profile("plain", "LoRA, speech"),
    make_profile("vetoed", "LoRA, fine-tuning", "survey, language models", max_items=4),
    make_profile("strict", '"video diffusion"^2, video', min_score=0.7, max_items=3),
    # No cap to speak of: the day's relative cut-off decides who is in (cutoff.cut).
    make_profile("wide", "LoRA, speech, diffusion", max_items=200),
]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_the_audit_agrees_with_the_digest_for_every_paper(
    prepared: Prepared, profile: Profile
) -> None:
    papers = prepared.papers
    sent = {p.id for p in papers[::7]}
    (ranked,) = rank_prepared(prepared, [profile], [sent])
    found = audit(prepared, profile, sent)
    verdicts = [found.verdict(p.id) for p in papers]
    assert all(v is not None for v in verdicts)
    inside = sorted((v for v in verdicts if v and v.outcome == IN), key=lambda v: v.place or 0)
    assert [v.paper.id for v in inside] == [i.paper.id for i in ranked.items]
    assert [v.score for v in inside] == [i.score for i in ranked.items]
    outcomes = {v.outcome for v in verdicts if v}
    assert outcomes >= {IN, BELOW, SENT}
    for v in verdicts:
        assert v is not None
        assert (SENT in v.rules) == (v.paper.id in sent)
        assert (EXCLUDED in v.rules) == bool(v.vetoed_by)
        assert (BELOW in v.rules) == (v.relevance < found.min_score)
        assert v.outcome == (v.rules[0] if v.rules else IN)
    # The papers under the cut: not vetoed, not sent, in the digest's order.
    below = found.below(10)
    assert below and all(v.outcome in (BELOW, PAST) and not v.vetoed_by for v in below)
    assert all(v.paper.id not in sent for v in below)
    if ranked.matched > len(ranked.items):  # more passed than max_items: those come first
        assert below[0].outcome == PAST and below[0].place == len(ranked.items) + 1
    assert found.verdict("no-such-paper") is None


def test_places_count_only_papers_that_pass_min_score(prepared: Prepared) -> None:
    """A paper under min_score can outscore one above it (popularity, recency): a cut
    between them leaves the second one's place as the digest's."""
    opened = audit(prepared, make_profile("plain", "LoRA, speech", min_score=0.0))
    verdicts = [v for p in prepared.papers if (v := opened.verdict(p.id)) and v.place]
    order = sorted(verdicts, key=lambda v: v.place or 0)
    pair = next((a, b) for a, b in pairwise(order) if a.relevance < b.relevance)
    floor = (pair[0].relevance + pair[1].relevance) / 2
    profile = make_profile("plain", "LoRA, speech", min_score=floor, max_items=len(order))
    (ranked,) = rank_prepared(prepared, [profile])
    found = audit(prepared, profile)
    second = found.verdict(pair[1].paper.id)
    assert found.verdict(pair[0].paper.id).outcome == BELOW  # type: ignore[union-attr]
    assert second is not None and second.outcome == IN
    assert ranked.items[(second.place or 0) - 1].paper.id == second.paper.id


def test_a_single_keyword_scores_its_relevance(prepared: Prepared) -> None:
    """With one keyword, relevance is that keyword's score (the noisy OR of one)."""
    found = audit(prepared, make_profile("one", "speech"))
    scored = [v for p in prepared.papers if (v := found.verdict(p.id)) and v.relevance > 0]
    assert scored
    for v in scored:
        (k,) = v.keywords
        assert k.keyword == "speech" and k.weight == 1.0
        assert k.score == pytest.approx(v.relevance, abs=1e-5)


def test_an_exclusion_is_named(prepared: Prepared) -> None:
    profile = make_profile("p", "LoRA", "survey, adapters")
    found = audit(prepared, profile)
    vetoed = [v for p in prepared.papers if (v := found.verdict(p.id)) and v.vetoed_by]
    assert vetoed and {x for v in vetoed for x in v.vetoed_by} <= {"survey", "adapters"}
    plain = audit(prepared, make_profile("p", "LoRA"))
    for v in vetoed:  # without the exclusions each scores the same and is not vetoed
        same = plain.verdict(v.paper.id)
        assert same is not None and same.relevance == v.relevance and not same.vetoed_by


# -- the command ---------------------------------------------------------------------------


def _first(project: Path, *args: str) -> Paper:
    code, out, _ = invoke(project, "rank", *args, "--json", now=AFTER_SEEDS.isoformat())
    assert code == 0, out
    row = json.loads(out.splitlines()[0])
    return Paper(id=row["id"], title=row["title"], abstract="")


def test_explain_says_in_or_which_rule_in_text_and_json(project: Path) -> None:
    now = AFTER_SEEDS.isoformat()
    top = _first(project, "-k", "LoRA")
    code, out, _ = invoke(project, "rank", "-k", "LoRA", "--explain", top.id, now=now)
    assert code == 0 and "IN the digest: #1 of at most 10" in out and "LoRA  weight 1.00" in out
    words = re.findall(r"[A-Za-z]{4,}", top.title)[-1]  # a word of its title vetoes it
    code, out, _ = invoke(
        project, "rank", "-k", "LoRA", "--exclude", words, "--explain", top.id, now=now
    )
    assert code == 0 and f"OUT: vetoed by the exclusion {words}" in out
    code, out, _ = invoke(
        project, "rank", "-k", "LoRA", "--limit", "1", "--show-below", "2", now=now
    )
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 and "#2 > 1" in lines[0]
    code, out, _ = invoke(
        project, "rank", "-k", "LoRA", "--limit", "1", "--show-below", "2", "--json", now=now
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["place"] for r in rows] == [2, 3] and {r["outcome"] for r in rows} == {PAST}
    code, out, _ = invoke(
        project, "rank", "-k", "LoRA", "--limit", "1", "--explain", rows[0]["id"], "--json", now=now
    )
    got = json.loads(out)
    assert got["outcome"] == PAST and got["place"] == 2 and got["max_items"] == 1
    assert got["keywords"][0]["keyword"] == "LoRA" and got["keywords"][0]["score"] > 0
    # A day later the seeds are outside the default window: said, not an error.
    code, out, _ = invoke(project, "rank", "-k", "LoRA", "--explain", top.id)
    assert code == 0 and "was not ranked: it did not arrive in the last day" in out


def test_explain_for_a_subscriber_knows_what_they_were_sent(project: Path) -> None:
    config = load_config(project / "config.toml", required=True)
    now = AFTER_SEEDS.isoformat()
    top = _first(project, "-k", "LoRA")
    with Store(config.store_path) as store:
        subscribe(config, store, "ada@example.org", make_profile("lora", "LoRA"), AFTER_SEEDS)
        sub = store.subscriber_by_email("ada@example.org")
        assert sub is not None
        store.upsert_subscriber(
            "ada@example.org", make_profile("speech", "speech"), now=AFTER_SEEDS
        )
        store.claim_deliveries(
            [Claim("d-ada", sub.id, AFTER_SEEDS.date(), None, AFTER_SEEDS, "{}", (top.id,))],
            AFTER_SEEDS,
        )
    args = ("rank", "--subscriber", "ada@example.org", "--explain", top.id)
    code, out, err = invoke(project, *args, now=now)
    assert code == 2 and "has several profiles; give --profile NAME" in err and "'lora'" in err
    code, out, _ = invoke(project, *args, "--profile", "lora", now=now)
    assert code == 0 and "OUT: already sent to this reader in an earlier digest" in out
    code, out, err = invoke(project, "rank", "--subscriber", "bob@example.org", "--show-below", "1")
    assert code == 2 and "no such subscriber" in err
    code, out, err = invoke(project, "rank", "-k", "LoRA", "--explain", "2999.99999")
    assert code == 2 and err.count("\n") == 1 and "no such paper" in err
