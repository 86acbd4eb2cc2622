"""The profile syntax: what a person types, parsed into `Keyword`s, and written back.

Syntax (one keyword per list element, or a comma-separated string outside quotes):
`LoRA` a term, `"video diffusion"` a phrase, `LoRA^2` a weight, `-survey` an exclusion.
`rank.query` explains what each one finds; this module only reads and writes the syntax,
so that the store (migrating old rows), the CLI and the ranker share one parser and
nothing below the ranker needs the ranker.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

from digest.errors import QueryError
from digest.model import Keyword

MAX_KEYWORD_CHARS = 200
MAX_KEYWORDS = 200
MAX_WEIGHT = 1000.0

_WEIGHT = re.compile(r"^(.*?)\^\s*([0-9]*\.?[0-9]+)\s*$", re.DOTALL)
#: Something after `^` that was meant as a weight but is not a plain positive number
#: (`^-1`, `^1e3`, `^nan`); `Met^2Net` or `S^{2}FT` are names, not weights.
_ANY_WEIGHT = re.compile(
    r"^(.*\S)\^\s*([-+]?(?:[0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?|nan|inf(?:inity)?))\s*$",
    re.DOTALL | re.IGNORECASE,
)
_QUOTES = '"“”„«»'
_HYPHENS = "-\u2010\u2011\u2012\u2013"
_SPACES = re.compile(r"\s+")


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _split(text: str) -> list[str]:
    """Split on commas and newlines that are outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch in _QUOTES:
            quoted = not quoted
        if ch in ",\n" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


@functools.lru_cache(maxsize=8192)
def _parse_one(raw: str) -> Keyword | None:
    """One keyword as typed; cached (a list of readers repeats a few hundred keywords;
    a QueryError is raised again each time, never cached)."""
    body = raw.strip()
    if not body:
        return None
    weight = 1.0
    m = _WEIGHT.match(body)
    odd = _ANY_WEIGHT.match(body)
    if odd and not m:  # `LoRA^-1`, `^nan`, `^1e3`: a weight was meant, and it is not one
        raise QueryError(
            f"keyword {_short(raw.strip())!r} has weight {odd.group(2)!r}; a weight is a plain "
            f"number above 0 and at most {MAX_WEIGHT:g}, like LoRA^2 or LoRA^0.5"
        )
    if m:
        body, weight = m.group(1).strip(), float(m.group(2))
        if not (0 < weight <= MAX_WEIGHT) or not math.isfinite(weight):
            raise QueryError(
                f"keyword {_short(raw.strip())!r} has weight {m.group(2)}; "
                f"a weight must be above 0 and at most {MAX_WEIGHT:g}"
            )
    # `-survey` and `- survey` are both exclusions, as make_profile and the archive's
    # search box (digest/rank/find.py) read them; a lone `-` is punctuation.
    negated = body.startswith("-") and bool(body[1:].strip())
    if negated:
        body = body[1:].lstrip()
    phrase = False
    if body[:1] in _QUOTES:
        inner = body[1:]
        close = next((i for i, ch in enumerate(inner) if ch in _QUOTES), len(inner))
        if not inner[close + 1 :].strip():  # the whole keyword is quoted (or left open)
            phrase, body = True, inner[:close]
    body = _SPACES.sub(" ", "".join(ch for ch in body if ch not in _QUOTES)).strip()
    if not body:
        return None
    if len(body) > MAX_KEYWORD_CHARS:
        raise QueryError(
            f"keyword {_short(body)!r} is {len(body)} characters long; "
            f"the limit is {MAX_KEYWORD_CHARS}"
        )
    return Keyword(("-" if negated else "") + body, phrase=phrase, weight=weight)


def parse_keywords(text: str | Sequence[str]) -> tuple[Keyword, ...]:
    """Parse keywords as typed: a comma-separated string, or one keyword per element.

    Quotes make a phrase, `^w` sets a weight, a leading `-` is kept in `Keyword.text` so
    that `make_profile` can turn it into an exclusion. Empty elements are skipped. Raises
    `QueryError` (and nothing else) for input that cannot be understood.
    """
    if isinstance(text, str):
        elements = _split(text)
    elif isinstance(text, Sequence) and all(isinstance(e, str) for e in text):
        elements = list(text)
    else:
        raise QueryError("keywords must be a string or a list of strings")
    out = [kw for kw in map(_parse_one, elements) if kw is not None]
    if len(out) > MAX_KEYWORDS:
        raise QueryError(f"{len(out)} keywords in one profile; the limit is {MAX_KEYWORDS}")
    return tuple(out)


def format_keyword(keyword: Keyword) -> str:
    """A keyword as a person would type it; `parse_keywords` reads it back unchanged."""
    text = f'"{keyword.text}"' if keyword.phrase else keyword.text
    return text if keyword.weight == 1.0 else f"{text}^{keyword.weight:g}"
