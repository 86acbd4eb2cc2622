"""The publish manifest and atomic file writes.

`.publish-manifest.json` in the output directory records, for every file the publisher
wrote, a hash of the inputs it was made from, and the cached picks of every day. A page
whose inputs hash is unchanged is neither rendered nor written, so publishing twice
touches nothing; a file listed in the manifest but no longer planned is removed (and
only such files: the publisher never deletes what it did not write).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = ".publish-manifest.json"
#: Bump when the manifest layout changes: an unknown version is read as empty.
MANIFEST_VERSION = 1


def inputs_hash(*parts: object) -> str:
    """A short hash of a page's inputs (anything with a stable `repr`)."""
    text = repr(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=12).hexdigest()


@dataclass(slots=True)
class Manifest:
    """What the last publish wrote (path -> inputs hash) and each day's cached picks."""

    pages: dict[str, str] = field(default_factory=dict)
    #: day (YYYY-MM-DD) -> {"key": cache key, "picks": [pick in JSON form, ...]}
    days: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, out_dir: Path) -> Manifest:
        """The manifest in `out_dir`; empty when missing, unreadable or of another version
        (then every page is rendered and compared with the file on disk)."""
        try:
            raw = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(raw, dict) or raw.get("version") != MANIFEST_VERSION:
            return cls()
        pages, days = raw.get("pages"), raw.get("days")
        if not isinstance(pages, dict) or not isinstance(days, dict):
            return cls()
        return cls(pages={str(k): str(v) for k, v in pages.items()}, days=days)

    def dumps(self) -> str:
        data = {"version": MANIFEST_VERSION, "pages": self.pages, "days": self.days}
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename, so a reader (or a
    crash) never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def same_content(path: Path, data: bytes) -> bool:
    """True when `path` exists and holds exactly `data` (then it is left alone)."""
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False
