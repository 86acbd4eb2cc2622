"""Ranking: keyword profiles against the day's papers, batched, explained.

    analyzer   text -> features (NFKC, LaTeX, case, stems, hyphen/space/solid, acronyms)
    query      `Keyword`s -> a validated `Profile` (`make_profile`) and features per keyword
    index      papers -> sparse BM25F feature x paper matrices
    score      all profiles x all papers in sparse products, gate and top-k (`select`)
    explain    matched keywords, fields and snippets per item; `match_spans` for templates
    ranker     `rank`, on top of score and explain
    settings   `RankSettings`, every tunable number with its default

`rank` is a pure function of (papers, profiles, now, settings, synonyms, exclude_ids).
The profile syntax itself (`parse_keywords`, `format_keyword`) lives in `digest.keywords`.
"""

from digest.keywords import format_keyword, parse_keywords
from digest.rank.explain import match_spans
from digest.rank.query import make_profile, profile_text
from digest.rank.ranker import Prepared, prepare, rank, rank_prepared
from digest.rank.settings import RankSettings

__all__ = [
    "Prepared",
    "RankSettings",
    "format_keyword",
    "make_profile",
    "match_spans",
    "parse_keywords",
    "prepare",
    "profile_text",
    "rank",
    "rank_prepared",
]
