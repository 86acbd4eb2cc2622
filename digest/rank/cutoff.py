"""How many papers a profile gets today: a cut-off that reads the profile's own day.

One global `min_score` is blind to the profile: relevance is normalised per keyword, but a
profile whose words are rare in the day's papers tops out at 0.5-0.6 (its relevant papers
say it once in the abstract), while a broad profile has a long tail of passing mentions at
0.4-0.5. So, for a profile that set no `min_score`, a paper must pass two bars:

    threshold = max(floor, ratio * best)

- `floor` (`RankSettings.default_min_score`): never below "a passing mention": relevance
  under it is what any abstract that uses a common word of the keyword reaches;
- `ratio * best` (`RankSettings.cutoff_ratio`): `best` is the profile's highest relevance
  among the day's papers it may get (its window, vetoes applied). A profile with a few
  strong matches keeps those and drops the weak tail that a global number would let in; a
  profile whose best match today is modest still gets its modest matches, and a profile
  whose matches are all passing mentions is held at the floor, so it cannot flood.

A profile's own `min_score` is the reader's override: when set, it alone is the threshold.
`max_items` caps the count either way. `cutoff_ratio = 0` is the old single global
threshold. Both constants are chosen by `make eval` on the dev profiles, with
leave-one-profile-out figures (the README reports them). A gap rule (cut at the largest drop
in the sorted scores) and a robust z-score over the profile's matched scores (median/MAD)
were measured too and scored no better there, so the rule stays this simple.

`thresholds` is the batched form `select.select` uses for every profile at once;
`cut` is the same rule for one profile's vector, with the reason a paper fell below it
(for explanations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digest.rank.settings import RankSettings

#: How `cut` names what stopped the list (stable strings, for --json output).
RULES = ("min_score", "floor", "relative", "max_items", "none")


@dataclass(frozen=True, slots=True)
class Cut:
    """Where one profile's sorted relevance list is cut today, and why."""

    keep: int  #: how many of the papers (best first) the profile gets
    threshold: float  #: the relevance a paper needed
    rule: str  #: what stopped the list: one of RULES ("none": nothing was left out)
    reason: str  #: one line naming the rule and its numbers


def thresholds(best: np.ndarray, own: np.ndarray, floor: float, ratio: float) -> np.ndarray:
    """Each profile's threshold: its own min_score where set (`own`, NaN where not), else
    max(floor, ratio * best), `best` being its highest relevance of the day."""
    return np.where(np.isnan(own), np.maximum(floor, ratio * best), own).astype(np.float32)


def cut(
    relevance: np.ndarray,
    settings: RankSettings,
    min_score: float | None = None,
    max_items: int | None = None,
) -> Cut:
    """The cut for one profile, given its relevance for each of the day's papers (its
    window, vetoes applied; papers its reader was sent before count, as in `select`: they
    set the day's bar, then are left out) in any order, zeros where it does not match.
    The papers at or above `threshold` pass; `keep` is how many the digest holds (max_items
    of them, by score: the same papers unless the tie-breakers reorder the last place)."""
    rel = np.sort(np.asarray(relevance, dtype=np.float32))[::-1]
    limit = settings.default_max_items if max_items is None else max_items
    best = float(rel[0]) if len(rel) else 0.0
    own = np.array([np.nan if min_score is None else min_score], np.float32)
    floor, ratio = settings.default_min_score, settings.cutoff_ratio
    threshold = float(thresholds(np.array([best], np.float32), own, floor, ratio)[0])
    passing = int(np.count_nonzero((rel >= threshold) & (rel > 0)))
    keep = min(passing, limit)
    if keep < passing:
        return Cut(keep, threshold, "max_items", f"past max_items {limit}")
    if keep == int(np.count_nonzero(rel > 0)):
        return Cut(keep, threshold, "none", "every matching paper is kept")
    if min_score is not None:
        return Cut(keep, threshold, "min_score", f"below the profile's min_score {min_score:.2f}")
    if ratio * best > floor:
        return Cut(
            keep,
            threshold,
            "relative",
            f"below {ratio:g} x the day's best match ({best:.2f}): {threshold:.2f}",
        )
    return Cut(keep, threshold, "floor", f"below the floor {floor:.2f} (a passing mention)")
