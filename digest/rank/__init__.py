"""Ranking: keyword profiles against the day's papers, batched, explained.

    analyzer   text -> features (NFKC, LaTeX, case, stems, hyphen/space/solid, acronyms)
    query      profile syntax -> `Keyword`s -> features per keyword (`make_profile`)
    index      papers -> sparse BM25F feature x paper matrices
    score      all profiles x all papers in sparse products, gate and top-k (`rank`)
    explain    matched keywords, fields and snippets per item; `match_spans` for templates
    settings   `RankSettings`, every tunable number with its default

`rank` is a pure function of (papers, profiles, now, settings, synonyms).
"""

from digest.rank.explain import match_spans
from digest.rank.query import make_profile, parse_keywords
from digest.rank.score import rank
from digest.rank.settings import RankSettings

__all__ = ["RankSettings", "make_profile", "match_spans", "parse_keywords", "rank"]
