"""Ranking: keyword profiles against the day's papers, batched, explained.

    analyzer   text -> features (NFKC, LaTeX, case, stems, hyphen/space/solid, acronyms)
    query      `Keyword`s -> a validated `Profile` (`make_profile`) and features per keyword
    index      papers -> sparse BM25F feature x paper matrices
    score      all profiles x all papers' keyword scores in sparse products
    select     relevance per (profile, paper), the gates and each profile's top-k
    fork       a batch's parts in forked processes that share the index (`workers`)
    explain    matched keywords, fields and snippets per item; `match_spans` for templates
    terms      a paper's analysed text, kept by the store so it is analysed once
    learn      readers' ratings as one more term of their profiles (`Rated`)
    ranker     `rank`, on top of score and explain
    settings   `RankSettings`, every tunable number with its default

`rank` is a pure function of (papers, profiles, now, settings, synonyms, exclude_ids).
The profile syntax itself (`parse_keywords`, `format_keyword`) lives in `digest.keywords`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers; at run time they load on first use
    from digest.keywords import format_keyword, parse_keywords
    from digest.rank.explain import match_spans
    from digest.rank.learn import Rated
    from digest.rank.learn import assign as assign_ratings
    from digest.rank.query import make_profile, profile_text
    from digest.rank.ranker import (
        Prepared,
        Ranked,
        keyword_features,
        prepare,
        rank,
        rank_prepared,
    )
    from digest.rank.settings import RankSettings
    from digest.rank.terms import encode_terms, terms_key

#: name -> the module that defines it. Loaded when first asked for (PEP 562), so that
#: `import digest.rank.query` (config, the CLI) does not pay for numpy and scipy.
_WHERE = {
    "format_keyword": "digest.keywords",
    "parse_keywords": "digest.keywords",
    "match_spans": "digest.rank.explain",
    "Rated": "digest.rank.learn",
    "assign_ratings": "digest.rank.learn",
    "make_profile": "digest.rank.query",
    "profile_text": "digest.rank.query",
    "Prepared": "digest.rank.ranker",
    "Ranked": "digest.rank.ranker",
    "prepare": "digest.rank.ranker",
    "keyword_features": "digest.rank.ranker",
    "rank": "digest.rank.ranker",
    "rank_prepared": "digest.rank.ranker",
    "RankSettings": "digest.rank.settings",
    "encode_terms": "digest.rank.terms",
    "terms_key": "digest.rank.terms",
}


#: Names exported under another name than their module's.
_AS = {"assign_ratings": "assign"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), _AS.get(name, name))
    raise AttributeError(f"module 'digest.rank' has no attribute {name!r}")


__all__ = [
    "Prepared",
    "RankSettings",
    "Ranked",
    "Rated",
    "assign_ratings",
    "encode_terms",
    "format_keyword",
    "keyword_features",
    "make_profile",
    "match_spans",
    "parse_keywords",
    "prepare",
    "profile_text",
    "rank",
    "rank_prepared",
    "terms_key",
]
