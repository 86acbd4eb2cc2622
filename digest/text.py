"""Text helpers shared by parsers, the store and the ranker.

`fold_title` is the identity of a paper when no arXiv id is known: two captures of one
paper must fold to the same string even when one spells `Met$^2$Net` and another
`Met^2Net`, so LaTeX markup is stripped before case and punctuation are folded.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

# `\command{arg}` keeps the argument; a bare `\command` (`\methodname`) keeps its name.
_LATEX_CMD_ARG = re.compile(r"\\[A-Za-z]+\s*\{([^{}]*)\}")
_LATEX_CMD = re.compile(r"\\([A-Za-z]+)")
_LATEX_MARKUP = re.compile(r"[$^_{}\\]")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_SPACES = re.compile(r"\s+")
# C0/C1 controls except tab/newline, and the bidi embedding/override/isolate characters.
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_latex(text: str) -> str:
    """Remove inline LaTeX markup, keeping its visible text: `Met$^2$Net` -> `Met2Net`."""
    if not any(ch in text for ch in "$^_{}\\"):
        return text
    out = _LATEX_CMD_ARG.sub(r"\1", text)
    out = _LATEX_CMD.sub(r"\1", out)
    return _LATEX_MARKUP.sub("", out)


def normalize_space(text: str) -> str:
    """Collapse runs of white space (including newlines) to one space and trim."""
    return _SPACES.sub(" ", text).strip()


def fold_title(title: str) -> str:
    """The comparison key of a title: NFKC, LaTeX stripped, case-folded, punctuation removed."""
    text = strip_latex(unicodedata.normalize("NFKC", title)).casefold()
    return _NON_WORD.sub(" ", text).strip()


def title_id(title: str, link: str = "") -> str:
    """A stable paper id for a paper without an arXiv id: a hash of its folded title, and
    of its link (DOI, URL or feed id) when it has one: two papers may share a title."""
    key = fold_title(title) + (f"\n{link.strip()}" if link.strip() else "")
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return "t" + digest[:15]


def clean(text: object) -> str:
    """Text safe to show anywhere: controls and bidi overrides removed, spaces collapsed."""
    text = str(text)
    # Printable text holds nothing `_UNSAFE` removes (controls and bidi characters are
    # unprintable) and no white space but " ": most of it is clean already (urls, names).
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return _clean_short(text) if len(text) <= 300 else _clean(text)


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _UNSAFE.sub("", text)).strip()


#: Titles and names, memoised: a send cleans the same ones for every reader who gets them.
_clean_short = functools.lru_cache(maxsize=65_536)(_clean)
