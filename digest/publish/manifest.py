"""The publish manifest, each day's saved state, and atomic file writes.

Two kinds of build state live in the output directory, beside the pages:

- `.publish-manifest.json`: the site-wide part. The inputs hash of every page that does
  not belong to one day (index, profile pages, feeds, sitemap, search list, static files),
  the store's row high-water mark and the day published through (so the next publish
  knows which papers are new), the ranking basis and the templates' hash (when either
  changes every day is planned again), and the list of published days.
- `.publish-days/YYYY-MM-DD.json`, one a day: its cache key, paper count, the inputs hash
  of every file that belongs to the day (day page, permalinks, search shard) and how many
  picks each profile has; on a second line its picks and display copies of the papers
  picked (what index, profile pages and feeds show of them), parsed only for the days
  whose picks a page being made shows (`DayState.details`).

A day's state is rewritten only when the day changes, so a new day costs one small file,
not a rewrite of a year's state. A page whose inputs hash is unchanged is neither rendered
nor written; a file listed in the state but no longer planned is removed (and only such
files: the publisher never deletes what it did not write). Day states are only trusted
together with the manifest that lists them: without it, every day is built again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import marshal
import operator
import os
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from digest.errors import PublishError
from digest.model import Paper
from digest.rank.texthash import text_hash

MANIFEST_NAME = ".publish-manifest.json"
DAYS_DIR = ".publish-days"
#: Bump when the state layout changes: an unknown version is read as empty.
MANIFEST_VERSION = 4  # 4: a day's state is two lines, its picks parsed when shown


def inputs_hash(*parts: object) -> str:
    """A short hash of a page's inputs (anything with a stable `repr`)."""
    text = repr(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=12).hexdigest()


#: What a page may show of a paper besides its title and abstract: every other field but
#: `last_seen` (each sighting moves it, and no page shows it); the two times apart
#: (`marshal` takes no date).
_TIMES = ("published", "first_seen")
_PLAIN_FIELDS = operator.attrgetter(
    *(f.name for f in fields(Paper) if f.name not in ("title", "abstract", "last_seen", *_TIMES))
)


def paper_key(paper: Paper) -> str:
    """A hash of everything a page may show of a paper: its text hash (`rank.texthash`,
    taken once per paper while a chunk of days is built and shared with the ranking and
    the search index) and the `marshal` of its other fields (version 2: no references
    between objects, so equal values give equal bytes whichever objects hold them).
    Cheaper than the JSON of `codec.paper_fingerprint` or a `repr` (it is taken of every
    paper of every day read: a whole year's from scratch), and only compared with keys
    made by this same function."""
    published, seen = paper.published, paper.first_seen
    other = (
        _PLAIN_FIELDS(paper),
        None if published is None else published.toordinal(),
        None if seen is None else seen.isoformat(),
    )
    h = hashlib.blake2b(text_hash(paper), digest_size=12)
    h.update(marshal.dumps(other, 2))
    return h.hexdigest()


class DamagedState(PublishError):
    """A day's saved picks could not be read back (`publish` then builds every day)."""


@dataclass(slots=True)
class DayState:
    """What the last publish knew of one day (`.publish-days/<day>.json`).

    The file is two lines of JSON: the day's key, count, pages and picks per profile,
    which every publish reads for every day; then its picks and the display copies of the
    picked papers (nine tenths of it), parsed only when a page that shows them is made
    (`details`): a new day's publish shows some thirty days of a year's picks."""

    key: str  #: the day's cache key (ranking basis + its papers' fingerprints)
    count: int  #: papers of the day
    #: picks in `pick_to_json` form, in rank order (None: not parsed yet, see `details`)
    picks: list[list] | None
    #: paper id -> `views.display_copy` (picked papers only; None: not parsed yet)
    papers: dict[str, list[Any]] | None
    pages: dict[str, str]  #: path -> inputs hash of the files that belong to this day
    per_profile: tuple[int, ...] = ()  #: how many picks each profile has (config order)
    unparsed: str = ""  #: the second line, while `picks` and `papers` are None

    def details(self) -> tuple[list[list], dict[str, list[Any]]]:
        """(picks, papers), parsed from the file on first use; `DamagedState` when they
        cannot be."""
        if self.picks is None or self.papers is None:
            try:
                raw = json.loads(self.unparsed)
                self.picks, self.papers = list(raw["picks"]), dict(raw["papers"])
            except (ValueError, TypeError, KeyError, AttributeError):
                raise DamagedState("a saved day's picks are damaged") from None
            self.unparsed = ""
        return self.picks, self.papers

    def dumps(self) -> str:
        picks, papers = self.details()
        head = {
            "version": MANIFEST_VERSION,
            "key": self.key,
            "count": self.count,
            "pages": self.pages,
            "per_profile": list(self.per_profile),
        }
        # json.dumps never writes a raw newline (it escapes one in a string as \n).
        return "\n".join(
            json.dumps(part, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            for part in (head, {"picks": picks, "papers": papers})
        )

    @classmethod
    def loads(cls, text: str) -> DayState | None:
        """The state in `text` (its picks left unparsed), or None when its first line is
        damaged or of another version."""
        head_text, _, rest = text.partition("\n")
        try:
            raw = json.loads(head_text)
            if raw.get("version") != MANIFEST_VERSION or not rest:
                return None
            return cls(
                key=str(raw["key"]),
                count=int(raw["count"]),
                picks=None,
                papers=None,
                pages={str(k): str(v) for k, v in raw["pages"].items()},
                per_profile=tuple(int(n) for n in raw["per_profile"]),
                unparsed=rest,
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


@dataclass(slots=True)
class Manifest:
    """The site-wide build state and, loaded beside it, every listed day's state."""

    pages: dict[str, str] = field(default_factory=dict)  #: site-wide pages only
    row: int | None = None  #: the store's newest row when the last publish read it
    through: date | None = None  #: the last publish's "today"
    basis: str = ""  #: ranking basis (profiles, settings, synonyms)
    globals_key: str = ""  #: site version, title and templates
    days: dict[date, DayState] = field(default_factory=dict)
    #: True when loaded from disk intact (every listed day's state included)
    complete: bool = False

    @classmethod
    def load(cls, out_dir: Path) -> Manifest:
        """The state in `out_dir`; empty (not `complete`) when missing, damaged or of
        another version, and then every day is read, ranked and planned again."""
        try:
            raw = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
            if not isinstance(raw, dict) or raw.get("version") != MANIFEST_VERSION:
                return cls()
            manifest = cls(
                pages={str(k): str(v) for k, v in raw["pages"].items()},
                row=None if raw["row"] is None else int(raw["row"]),
                through=None if raw["through"] is None else date.fromisoformat(raw["through"]),
                basis=str(raw["basis"]),
                globals_key=str(raw["globals"]),
            )
            for day_text in raw["days"]:
                day = date.fromisoformat(day_text)
                state = DayState.loads(day_path(out_dir, day).read_text(encoding="utf-8"))
                if state is None:
                    return cls()
                manifest.days[day] = state
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return cls()
        manifest.complete = True
        return manifest

    def dumps(self) -> str:
        data = {
            "version": MANIFEST_VERSION,
            "pages": self.pages,
            "row": self.row,
            "through": self.through.isoformat() if self.through else None,
            "basis": self.basis,
            "globals": self.globals_key,
            "days": sorted(d.isoformat() for d in self.days),
        }
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def day_path(out_dir: Path, day: date) -> Path:
    """Where a day's state is kept."""
    return out_dir / DAYS_DIR / f"{day.isoformat()}.json"


#: Temporary names are this process's id and a count (see `write_atomic`).
_TEMP_COUNT = itertools.count()


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename, so a reader (or a
    crash) never sees half a page. The temporary file is named by this process's id and
    a count, created exclusively: a random name each (`tempfile.mkstemp`) costs more
    than the write of a small page (a year's site is 33,000 files), and two processes
    (a publish's workers) never share a pid; a leftover of a dead process with the same
    pid is only replaced (`O_EXCL` fails: the next count is tried)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.parent / f".{path.name}.{os.getpid()}-{next(_TEMP_COUNT)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o644)
            break
        except FileExistsError:
            continue
    try:
        os.fchmod(fd, 0o644)  # whatever the umask: pages are for a web server to read
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def same_content(path: Path, data: bytes) -> bool:
    """True when `path` exists and holds exactly `data` (then it is left alone)."""
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False
