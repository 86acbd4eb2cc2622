"""Frozen digests: a whole `Digest` as JSON and back, and the compact form a claim stores.

    freeze_digest / thaw_digest       a whole digest as JSON (and back)
    freeze_compact / thaw_compact     what a claim stores: a small digest that refers to
                                      shared item records (kept once, not per reader)

A resend after a crash renders from these, so they must give back exactly the digest
that was planned; the papers, keywords and profiles in them are `digest.codec`'s forms.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from digest.codec import paper_from_json, paper_to_json, profile_from_json, profile_to_json
from digest.model import Digest, DigestItem, DigestSection, Match, Paper, Profile


def freeze_digest(digest: Digest) -> str:
    """The digest as JSON: what a claim stores, so a resend renders the same digest."""
    raw = {
        "day": digest.day.isoformat(),
        "title": digest.title,
        "papers_considered": digest.papers_considered,
        "notes": list(digest.notes),
        "sections": [
            {
                "profile": profile_to_json(s.profile),
                "items": [_item_json(i) for i in s.items],
                **({"more": s.more} if s.more else {}),
            }
            for s in digest.sections
        ],
    }
    return json.dumps(raw, ensure_ascii=False, sort_keys=True)


def _item_json(item: DigestItem) -> dict[str, Any]:
    return {
        "paper": paper_to_json(item.paper),
        "score": item.score,
        "matches": [_match_json(m) for m in item.matches],
        "snippets": list(item.snippets),
    }


def _match_json(match: Match) -> dict[str, Any]:
    """A match as JSON; the matched words and `partly` only when there are any (records
    from before them read the same)."""
    raw: dict[str, Any] = {"keyword": match.keyword, "fields": list(match.fields)}
    if match.words:
        raw["words"] = list(match.words)
    if match.partly:
        raw["partly"] = True
    return raw


def thaw_digest(content: str) -> Digest:
    """The digest a claim stored (`freeze_digest`)."""
    return _digest_from_json(json.loads(content), _item_from_json)


def _digest_from_json(raw: Mapping[str, Any], item: Callable[[Any], DigestItem]) -> Digest:
    """A frozen digest's JSON as a Digest, its items made by `item` (whole or compact)."""
    return Digest(
        day=date.fromisoformat(raw["day"]),
        title=raw["title"],
        papers_considered=raw["papers_considered"],
        notes=tuple(raw["notes"]),
        sections=tuple(
            DigestSection(
                profile_from_json(s["profile"]),
                tuple(item(i) for i in s["items"]),
                int(s.get("more", 0)),
            )
            for s in raw["sections"]
        ),
    )


def _item_from_json(raw: Mapping[str, Any]) -> DigestItem:
    return DigestItem(
        paper_from_json(raw["paper"]),
        raw["score"],
        tuple(
            Match(
                m["keyword"], tuple(m["fields"]), tuple(m.get("words", ())), bool(m.get("partly"))
            )
            for m in raw["matches"]
        ),
        tuple(raw["snippets"]),
    )


# -- compact claims: a reader's digest refers to item records shared by all readers -------

#: The version mark of a compact frozen digest (whole ones carry none).
COMPACT = 2


#: An item without its score, for the caches of a run: (paper, matches, snippets).
ItemBody = tuple[Paper, tuple[Match, ...], tuple[str, ...]]
#: Entries a cache may hold before it starts over (a run's distinct items are far fewer).
CACHE_LIMIT = 100_000
#: The prefix of a paper record's key (item records' keys are bare hashes).
PAPER_KEY = "p:"


@dataclass
class FreezeCache:
    """What `freeze_compact` learnt in one run, by the identity of the objects (the
    planner shares them between readers; each is kept alive here, so its id is never
    reused): each item's record key and JSON, and each paper's."""

    items: dict[tuple[int, int, int], tuple[ItemBody, str, str]] = field(default_factory=dict)
    papers: dict[int, tuple[Paper, str, str]] = field(default_factory=dict)
    #: Each profile's JSON, by value: a reader's profiles are theirs, but many share one.
    profiles: dict[Profile, str] = field(default_factory=dict)

    def profile(self, profile: Profile) -> str:
        got = self.profiles.get(profile)
        if got is None:
            if len(self.profiles) >= CACHE_LIMIT:
                self.profiles.clear()
            got = self.profiles[profile] = _dumps(profile_to_json(profile))
        return got

    def paper(self, paper: Paper) -> tuple[str, str]:
        got = self.papers.get(id(paper))
        if got is None or got[0] is not paper:
            if len(self.papers) >= CACHE_LIMIT:
                self.papers.clear()
            text = json.dumps(paper_to_json(paper), ensure_ascii=False, sort_keys=True)
            got = self.papers[id(paper)] = (paper, PAPER_KEY + _hash(text), text)
        return got[1], got[2]


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def freeze_compact(digest: Digest, cache: FreezeCache | None = None) -> tuple[str, dict[str, str]]:
    """A claim's content and the records it refers to ({key: JSON}).

    An item record (matches and snippets, and the key of its paper's record) is keyed by a
    hash of its JSON, and so is a paper record (the paper as it was sent): the readers who
    got the same paper share one paper record, and those who got it for the same keywords
    one item record. The content keeps only keys, scores and the profile: about 1 KB for
    10 items, and a resend after a crash reads back exactly what was claimed.
    """
    records: dict[str, str] = {}
    sections: list[str] = []
    cache = FreezeCache() if cache is None else cache
    for s in digest.sections:
        refs = []
        for item in s.items:
            ident = (id(item.paper), id(item.matches), id(item.snippets))
            got = cache.items.get(ident)
            if got is None or not _same_body(got[0], item):
                paper_key, _ = cache.paper(item.paper)
                raw = _item_json(item)
                del raw["score"], raw["paper"]
                raw["paper_ref"] = paper_key
                text = json.dumps(raw, ensure_ascii=False, sort_keys=True)
                if len(cache.items) >= CACHE_LIMIT:
                    cache.items.clear()
                body = (item.paper, item.matches, item.snippets)
                got = cache.items[ident] = (body, _hash(text), text)
            _, key, text = got
            paper_key, paper_text = cache.paper(item.paper)
            records[key] = text
            records[paper_key] = paper_text
            refs.append([key, item.score])
        sections.append(
            f'{{"items": {_dumps(refs)}, "more": {int(s.more)}, '
            f'"profile": {cache.profile(s.profile)}}}'
        )
    # What json.dumps(..., sort_keys=True) writes for the whole digest (tests compare),
    # written from the parts: a reader's profiles are serialised once a run, not per digest.
    content = (
        f'{{"day": {_dumps(digest.day.isoformat())}, "notes": {_dumps(list(digest.notes))}, '
        f'"papers_considered": {int(digest.papers_considered)}, '
        f'"sections": [{", ".join(sections)}], "title": {_dumps(digest.title)}, "v": {COMPACT}}}'
    )
    return content, records


#: JSON as the frozen forms write it (UTF-8 text as it is, keys sorted), one encoder for
#: all: json.dumps with options makes a new encoder a call.
_dumps = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def _same_body(body: ItemBody, item: DigestItem) -> bool:
    return body[0] is item.paper and body[1] is item.matches and body[2] is item.snippets


def item_keys(content: str) -> list[str]:
    """The item records a frozen digest refers to (none for a whole one)."""
    raw = json.loads(content)
    if raw.get("v") != COMPACT:
        return []
    return [key for s in raw["sections"] for key, _ in s["items"]]


def records_for(
    contents: Iterable[str], fetch: Callable[[list[str]], dict[str, str]]
) -> dict[str, str]:
    """Every record these frozen digests need to thaw: their item records, then the paper
    records those refer to, read with `fetch` (e.g. `Store.frozen_items`). A content that
    cannot be read needs none (thawing it fails alone, with the reason)."""
    keys: list[str] = []
    for content in contents:
        try:
            keys += item_keys(content)
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    records = fetch(keys)
    papers = {ref for text in records.values() if (ref := _paper_ref(text))}
    if papers:
        records.update(fetch(sorted(papers)))
    return records


def _paper_ref(text: str) -> str | None:
    try:
        ref = json.loads(text).get("paper_ref")
    except (ValueError, AttributeError):
        return None
    return ref if isinstance(ref, str) else None


def thaw_compact(
    content: str, records: Mapping[str, str], cache: dict[str, ItemBody] | None = None
) -> Digest:
    """The digest `freeze_compact` froze, with its records (`records_for`); a whole frozen
    digest (from before compact claims) reads as `thaw_digest` does, and an item record
    from before paper records (the paper inline) still reads. `cache` (one per run) keeps
    each record read: {key: item without its score}."""
    raw = json.loads(content)
    if raw.get("v") != COMPACT:
        return _digest_from_json(raw, _item_from_json)
    cache = {} if cache is None else cache

    def item(ref: list[Any]) -> DigestItem:
        key, score = ref
        body = cache.get(key)
        if body is None:
            stored = json.loads(records[key])
            paper_key = stored.pop("paper_ref", None)
            if paper_key is not None:
                stored["paper"] = json.loads(records[paper_key])
            got = _item_from_json({**stored, "score": score})
            if len(cache) >= CACHE_LIMIT:
                cache.clear()
            body = cache[key] = (got.paper, got.matches, got.snippets)
        return DigestItem(body[0], score, body[1], body[2])

    return _digest_from_json(raw, item)
