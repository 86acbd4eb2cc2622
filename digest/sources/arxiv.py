"""What arXiv's documents share: ids and versions, links, listing feeds, API errors.

arXiv serves papers three ways that this program reads (`feed` parses all of them):

- listing feeds, `https://rss.arxiv.org/rss/<cat>` (RSS 2.0) and `/atom/<cat>`: one item
  per announcement, the guid `oai:arXiv.org:2510.13151v1`, the description
  `arXiv:2510.13151v1 Announce Type: new Abstract: ...`; empty at weekends and holidays;
- API answers, `http://export.arxiv.org/api/query?...` (Atom): entry ids
  `http://arxiv.org/abs/2510.13151v2`, `<arxiv:comment>`, `<arxiv:doi>`,
  `<arxiv:primary_category>`, a `pdf` link;
- before 2024, RSS 1.0 (RDF) feeds, `http://export.arxiv.org/rss/<cat>`: titles end
  `(arXiv:2310.08582v1 [cs.CL])`, or `... [cs.CL] UPDATED)` for a new version, and the
  authors are HTML links;
- the API's error answer: an Atom feed whose one entry is titled `Error`, its id
  `http://arxiv.org/api/errors#incorrect_id_format_for_1234.5678` and its summary the
  reason. It is no paper.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

ABS_URL = "https://arxiv.org/abs/"
PDF_URL = "https://arxiv.org/pdf/"
#: New-style (`2401.01234`) and old-style (`hep-th/9901001`) arXiv ids, version optional.
ARXIV_ID = re.compile(
    r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<version>\d+))?"
)
#: Announce types of a new version of an older paper.
REVISIONS = frozenset({"replace", "replace-cross"})
#: The listing feeds' description: `arXiv:2510.13151v1 Announce Type: new Abstract: ...`.
ANNOUNCEMENT = re.compile(
    r"^\s*arXiv:(?P<id>\S+?)\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:\s*)?",
    re.IGNORECASE,
)
_REF = re.compile(
    r"(?:oai:arXiv\.org:|arxiv\.org/(?:abs|pdf)/|^arXiv:|^)" + ARXIV_ID.pattern + r"(?:\.pdf)?$",
    re.IGNORECASE,
)
_OLD_TITLE = re.compile(r"\s*\(arXiv:(?P<ref>\S+)\s+\[[^\]]*\](?:\s+(?P<updated>UPDATED))?\)\s*$")
_ERROR_ID = re.compile(r"arxiv\.org/api/errors", re.IGNORECASE)
_LISTING_HOST = re.compile(r"^https?://(?:rss|export)\.arxiv\.org/(?:rss|atom)/", re.IGNORECASE)


def arxiv_id(text: str) -> str | None:
    """`2401.01234v2` -> `2401.01234`; None when `text` is not an arXiv id."""
    match = ARXIV_ID.fullmatch(text.strip())
    return match["id"] if match else None


def id_version(text: str) -> int | None:
    """`2401.01234v2` -> 2; None without a version."""
    match = ARXIV_ID.fullmatch(text.strip())
    return int(match["version"]) if match and match["version"] else None


def arxiv_ref(text: str) -> tuple[str, int | None] | None:
    """`oai:arXiv.org:2401.01234v2` or `https://arxiv.org/abs/2401.01234v2` -> (id, 2)."""
    match = _REF.search(text.strip())
    if not match:
        return None
    return match["id"], int(match["version"]) if match["version"] else None


def split_title(title: str) -> tuple[str, str | None, bool]:
    """An RSS 1.0 title `Title. (arXiv:2310.08582v2 [cs.CL] UPDATED)` -> (`Title.`,
    `arXiv:2310.08582v2`, True: a new version); other titles are left as they are."""
    match = _OLD_TITLE.search(title)
    if match is None or match.start() == 0:
        return title, None, False
    return (
        title[: match.start()],
        "arXiv:" + match["ref"].removeprefix("arXiv:"),
        bool(match["updated"]),
    )


def pdf_url(paper_id: str) -> str:
    """The PDF of an arXiv paper (its newest version)."""
    return PDF_URL + paper_id


def is_error_entry(entry_id: str, title: str) -> bool:
    """An entry of the API's error answer, not a paper."""
    return bool(_ERROR_ID.search(entry_id)) or (title == "Error" and "arxiv" in entry_id.lower())


def is_listing_feed(feed: Mapping[str, object], origin: str) -> bool:
    """A listing feed of rss.arxiv.org (empty at weekends), by its links or its URL."""
    links = [feed.get("link"), origin]
    listed = feed.get("links")
    for link in listed if isinstance(listed, list) else []:
        if isinstance(link, Mapping):
            links.append(link.get("href"))
    return any(isinstance(url, str) and _LISTING_HOST.match(url) for url in links)
