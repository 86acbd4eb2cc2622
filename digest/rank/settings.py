"""`RankSettings`: every number the ranker uses, with its default and why.

config.toml's `[ranking]` table maps 1:1 onto these field names.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

from digest.model import Profile

#: The fields that take effect only where a reader's ratings are ranked (`rank.learn`):
#: the archive ranks the config's profiles, which have none, so they are not part of
#: what decides its picks (`without_ratings`).
RATINGS_ONLY = frozenset(
    {
        "query_terms",
        "like_background",
        "like_gain",
        "like_weight",
        "like_max_papers",
        "dislike_weight",
        "like_dense",
    }
)


@dataclass(frozen=True, slots=True)
class RankSettings:
    """Tunable constants of the ranker. All scores they produce lie in [0, 1]."""

    #: BM25F field weights: a word in the title counts like `title_weight` words in the
    #: abstract (titles are short and say what the paper is about).
    title_weight: float = 3.0
    abstract_weight: float = 1.0
    #: BM25 term-frequency saturation: how fast repeats stop adding evidence.
    k1: float = 1.2
    #: BM25 length normalisation (0 = none, 1 = full), same for both fields.
    b: float = 0.75
    #: Share of a single word's evidence that needs its own word form rather than any word
    #: with the same stem (`adapters` vs `adaptive`); the rest is given to the stem.
    exact_share: float = 0.3
    #: Most credit an unquoted multi-word keyword gets when its words occur but not
    #: together (words together as a phrase can reach 1).
    scattered_credit: float = 0.7
    #: How much missing words of such a keyword cost: the scattered score is multiplied by
    #: coverage ** coverage_power, coverage being the weighted share of its words present
    #: (0 = not at all, 1 = proportionally).
    coverage_power: float = 1.0
    #: Each word of such a keyword weighs idf ** idf_power in that share and in the mean
    #: saturation. 2 is the vector-space convention (query and document both idf-weighted):
    #: the rare word carries the keyword ("unlearning" in "machine unlearning"), so a
    #: paper that says "LLM unlearning" keeps most of the credit while one that only says
    #: "machine" gets little. Tuned on the dev set together with coverage_power (see
    #: README): 1.75 and 2.5 score lower there.
    idf_power: float = 2.0
    #: A keyword scoring below this in a paper counts as not matching it: such traces
    #: (one common word of a multi-word keyword) are noise, would be listed as matches,
    #: and would fill the batch with pairs that can never pass min_score.
    min_evidence: float = 0.1
    #: Tie-breakers. The final score is relevance * (1 - p - r + p*popularity + r*recency)
    #: with popularity and recency in [0, 1], so they reorder close calls by at most
    #: p + r (10 %) and can never lift a paper: min_score is applied to relevance alone.
    popularity_weight: float = 0.05
    recency_weight: float = 0.05
    #: Upvotes at which popularity reaches 1 (log-scaled: 10 upvotes ~ 0.39).
    popularity_saturation: int = 500
    #: Days after which recency halves (age from `published`, else `first_seen`).
    recency_half_life_days: float = 7.0
    #: Defaults for profiles that set no `max_items` / `min_score` (`rank.cutoff` says
    #: why): such a profile keeps the papers whose relevance is at least
    #: max(default_min_score, cutoff_ratio * its best relevance of the day), so a profile
    #: with a few strong matches drops the weak tail and one whose best today is modest
    #: still gets its modest matches. The floor is "more than a passing mention" (once in
    #: the abstract gives ~0.45; in the title, or twice in the abstract, ~0.5+).
    #: cutoff_ratio = 0 gives one global threshold, default_min_score. Both were chosen on
    #: the dev set by `make eval`, which reports leave-one-profile-out figures for them.
    #: max_items keeps one good email a morning: 10 papers a profile (a 2,000-paper day
    #: matches far more for broad keywords), the rest are counted in a "N more matched
    #: today" line that links to the archive. A profile's own min_score overrides both.
    default_max_items: int = 10
    default_min_score: float = 0.4
    cutoff_ratio: float = 0.5
    #: Learning from ratings (`rank.learn`): a rated paper is read as a "more like this"
    #: query of its `query_terms` heaviest tf-idf features; a paper is lifted when its
    #: similarity to the liked papers' mean stands more than `like_background` standard
    #: deviations above the day's mean, fully at `like_gain` deviations more, by up to
    #: `like_weight` (a paper no keyword reaches gets at most that relevance), for at most
    #: `like_max_papers` papers a profile; near a disliked paper the same way, it loses
    #: up to `dislike_weight` (what it misses is multiplied by 1 + that). All but
    #: query_terms chosen on the dev set by `make eval` (bench/ratings_eval.py), which
    #: reports leave-one-profile-out figures for them: these are its grid's best on all
    #: the dev profiles. Measured and not kept (no leave-one-out gain): subtracting the
    #: dislikes from the likes' query (Rocchio's gamma) and reweighting the profile's
    #: keywords by which of them the likes share.
    query_terms: int = 100
    like_background: float = 2.0
    like_gain: float = 4.0
    like_weight: float = 0.7
    like_max_papers: int = 10
    dislike_weight: float = 1.0
    #: With the semantic layer on, how much meaning counts in "alike" (`rank.alike`: the
    #: z of the papers' embeddings mixed with the words' tf-idf z; 0 = words alone, and
    #: the rated papers' vectors are not read). Chosen on the dev set by `make eval`
    #: (bench/ratings_eval.py, with like_background and like_gain beside it): 0, as no
    #: mix beat the words' taste there (README, "Learning from ratings").
    like_dense: float = 0.0
    #: The semantic layer (`rank.dense`; only with `papers-digest[semantic]` installed
    #: and paper vectors in the store): a paper whose similarity to a keyword has a z-score
    #: of at least `dense_z` against the day's papers gets `dense_credit` (more above it)
    #: as that keyword's evidence by meaning. dense_credit = 0 turns the layer off. Both
    #: chosen on the dev set by `make eval` (leave-one-profile-out figures in the README).
    dense_z: float = 3.5
    dense_credit: float = 0.4
    #: Related terms (`rank.related`; only with a related-terms table in the store): a
    #: paper that says a keyword in other words, i.e. has terms the stored papers use
    #: with it, matches the keyword with up to `related_credit` (less than the keyword
    #: itself can reach), by its `related_terms` heaviest related terms. 0 turns it off.
    related_credit: float = 0.0
    related_terms: int = 20
    #: Sense for ambiguous keywords (`select`): where only some words of a multi-word
    #: keyword match a paper (its general word alone, say "mixture" of "data mixture"),
    #: that evidence counts as (1 - s) ** g with g = sense_floor + (1 - sense_floor) *
    #: context, context being how much the paper shows the profile's keywords as wholes
    #: or the terms the stored papers use with them (`rank.related`), as a noisy OR over
    #: the profile's keywords. 1 turns it off.
    sense_floor: float = 1.0
    #: Profiles scored per batch: bounds memory at about chunk x papers x 8 bytes.
    profile_chunk: int = 4096
    #: Snippets per item, and their length in characters.
    snippets: int = 2
    snippet_chars: int = 220

    @property
    def uses_related(self) -> bool:
        """True when ranking reads the related terms (bridges or sense on)."""
        return self.related_credit > 0 or self.sense_floor < 1

    def without_ratings(self) -> tuple[tuple[str, object], ...]:
        """(name, value) of every field that decides a ranking without ratings: what the
        archive's cache keys hash, so a ratings constant changed or added leaves them."""
        names = (f.name for f in fields(self))
        return tuple(
            (n, v) for n, v in zip(names, astuple(self), strict=True) if n not in RATINGS_ONLY
        )

    def max_items_of(self, profile: Profile) -> int:
        """The profile's own max_items, or the default when it set none."""
        return self.default_max_items if profile.max_items is None else profile.max_items

    def min_score_of(self, profile: Profile) -> float:
        """The profile's own min_score, or the floor of the cut-off when it set none (the
        cut-off may ask for more: `rank.cutoff`)."""
        return self.default_min_score if profile.min_score is None else profile.min_score
