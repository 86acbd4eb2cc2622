"""Deleting a bench's files once its measurements are over, never between them.

On ext4 without a journal (this machine's root file system), making a file skips every
inode freed in the last minute (six while its inode-table block is dirty), looking each
one up in turn (`__ext4_new_inode` -> `find_inode_bit` -> `recently_deleted`, in perf).
So a run that writes 18,000 messages straight after another run's 18,000 were deleted
paid 2-5 CPU-s more of kernel time for the same files (measured: 2.5 s of system time
for the send with nothing deleted before it, 7.8 s a minute after a deletion). That is
not the product's cost: a mail outbox or an archive does not follow a mass deletion. So
a run's directories are moved aside (a rename frees no inode) and deleted when the bench
ends; the year's publish (32,000 files a site) keeps its sites until it ends, likewise.

Between two invocations the same holds: give a bench a few minutes after another one
ended before comparing figures.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

_count = itertools.count()


class Later:
    """Directories to delete at the end: `put` moves one aside, `empty` deletes them all.

    `home` is a directory on the same file system as what is put (a rename, not a copy).
    """

    def __init__(self, home: Path) -> None:
        self.aside = home / ".deleted-later"

    def put(self, path: Path) -> None:
        """Move `path` (if it exists) out of the way, to be deleted by `empty`."""
        if path.exists():
            self.aside.mkdir(parents=True, exist_ok=True)
            path.rename(self.aside / f"{path.name}.{os.getpid()}.{next(_count)}")

    def empty(self) -> None:
        """Delete everything put aside."""
        shutil.rmtree(self.aside, ignore_errors=True)
