"""Which stored paper a new record is, and the richer of the two: pure, no SQL.

Two records are one paper when they share the id, the arXiv id or the DOI. Without those,
records with the same folded title are one paper when their first authors agree, or
their links do; different first authors, links, arXiv ids or DOIs make them different
papers, however alike the titles. A record that has nothing to tell it apart (a text
capture has no link and no names) joins a stored paper of its title: a merge by the
title alone, which the store reports.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from enum import IntEnum

from digest.model import MAX_KEYWORDS, Paper
from digest.text import fold_title


class Same(IntEnum):
    """Why a stored paper is the new record's paper; the lower, the surer."""

    ID = 1
    ARXIV_ID = 2
    DOI = 3
    FIRST_AUTHOR = 4
    LINK = 5
    TITLE_ALONE = 6


def sameness(stored: Paper, new: Paper) -> Same | None:
    """Why `stored` is the paper `new` describes, or None when they are different papers."""
    if stored.id == new.id:
        return Same.ID
    if stored.arxiv_id and new.arxiv_id:
        return Same.ARXIV_ID if stored.arxiv_id == new.arxiv_id else None
    if stored.doi and new.doi:
        return Same.DOI if stored.doi == new.doi else None
    if fold_title(stored.title) != fold_title(new.title):
        return None
    if stored.authors and new.authors:
        same = fold_title(stored.authors[0]) == fold_title(new.authors[0])
        return Same.FIRST_AUTHOR if same else None
    if stored.url and new.url:
        return Same.LINK if _link_key(stored.url) == _link_key(new.url) else None
    return Same.TITLE_ALONE


def _link_key(url: str) -> str:
    """`https://www.example.org/a/` and `http://example.org/a` are one link."""
    rest = url.strip().split("://", 1)[-1]
    rest = rest.removeprefix("www.")
    return rest.rstrip("/").casefold()


def merge(old: Paper, new: Paper) -> Paper:
    """The richer of two records of one paper, field by field; the id never changes.

    Text: the longer; lists: the longer (keywords: both, in order, without repeats);
    counts that grow (upvotes, stars, comments, version): the larger; anything else:
    the stored value when there is one.
    """
    richer_meta = new.has_metadata and not old.has_metadata
    return replace(
        old,
        title=new.title if richer_meta and new.title else old.title,
        abstract=_longer(old.abstract, new.abstract),
        published=old.published or new.published,
        upvotes=max(old.upvotes, new.upvotes),
        authors_count=_first(old.authors_count, new.authors_count),
        organization=old.organization or new.organization,
        arxiv_id=old.arxiv_id or new.arxiv_id,
        url=old.url or new.url,
        authors=new.authors if len(new.authors) > len(old.authors) else old.authors,
        summary=_longer(old.summary, new.summary),
        keywords=_union(old.keywords, new.keywords),
        pdf_url=old.pdf_url or new.pdf_url,
        code_url=old.code_url or new.code_url,
        code_stars=_larger(old.code_stars, new.code_stars),
        project_url=old.project_url or new.project_url,
        thumbnail_url=old.thumbnail_url or new.thumbnail_url,
        comments=_larger(old.comments, new.comments),
        comment=_longer(old.comment, new.comment),
        version=_larger(old.version, new.version),
        doi=old.doi or new.doi,
        first_seen=_min_time(old.first_seen, new.first_seen),
        last_seen=_max_time(old.last_seen, new.last_seen),
    )


def _longer(old: str, new: str) -> str:
    return new if len(new) > len(old) else old


def _first(old: int | None, new: int | None) -> int | None:
    return old if old is not None else new


def _larger(old: int | None, new: int | None) -> int | None:
    return max(old, new) if old is not None and new is not None else _first(old, new)


def _union(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for word in (*old, *new):
        seen.setdefault(word.casefold(), word)
    return tuple(seen.values())[:MAX_KEYWORDS]


def _min_time(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(t for t in (a, b) if t is not None) if (a or b) else None


def _max_time(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(t for t in (a, b) if t is not None) if (a or b) else None


def _text(value: str | None) -> str | None:
    """Text SQLite can store: lone surrogates (from hostile JSON or XML) replaced."""
    return value.encode("utf-8", "replace").decode("utf-8") if value else value


def _count(value: int | None) -> int | None:
    """A count SQLite can store; anything past 2**62 is not a real count."""
    return value if value is None or 0 <= value < 2**62 else None


def storable(p: Paper) -> Paper:
    """The paper with every value in a form SQLite takes (hostile input never aborts)."""
    return replace(
        p,
        id=_text(p.id) or p.id,
        title=_text(p.title) or "",
        abstract=_text(p.abstract) or "",
        organization=_text(p.organization),
        arxiv_id=_text(p.arxiv_id),
        url=_text(p.url),
        upvotes=_count(p.upvotes) or 0,
        authors_count=_count(p.authors_count),
        authors=tuple(_text(a) or "" for a in p.authors),
        summary=_text(p.summary) or "",
        keywords=tuple(_text(k) or "" for k in p.keywords),
        pdf_url=_text(p.pdf_url),
        code_url=_text(p.code_url),
        code_stars=_count(p.code_stars),
        project_url=_text(p.project_url),
        thumbnail_url=_text(p.thumbnail_url),
        comments=_count(p.comments),
        comment=_text(p.comment) or "",
        version=_count(p.version),
        doi=_text(p.doi),
    )
