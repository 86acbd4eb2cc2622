"""Reading local captures: globs, directories, size cap, capture dates.

Only this module touches the file system for sources; parsers get bytes.
"""

from __future__ import annotations

import glob
import os
import stat
from datetime import date, datetime
from pathlib import Path

from digest.errors import SourceError


def expand(pattern: str, root: Path) -> list[Path]:
    """Files matched by a glob or named directly; a directory means the files inside it."""
    base = Path(pattern).expanduser()
    if not base.is_absolute():
        base = root / base
    if any(ch in pattern for ch in "*?["):
        matches = [Path(p) for p in sorted(glob.glob(str(base), recursive=True))]
        return [p for p in matches if p.is_file()]
    if base.is_dir():
        return sorted(p for p in base.iterdir() if p.is_file() and not p.name.startswith("."))
    return [base]


def read_capture(path: Path, max_bytes: int) -> bytes:
    """The bytes of one capture; a SourceError names the file and how to fix the problem.

    Regular files only: a device (/dev/zero reads for ever) or a FIFO (blocks until a
    writer comes) is refused. The file is opened without blocking, checked on its open
    descriptor, and read to at most `max_bytes` (a file growing while read is refused too).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file; check the path or the source's glob") from None
    except IsADirectoryError:
        raise SourceError(f"{path}: is a directory, not a file") from None
    except PermissionError:
        raise SourceError(f"{path}: permission denied") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError:  # a NUL byte in the name: no such file can exist
        raise SourceError(f"{str(path)!r}: no such file (the name holds a NUL byte)") from None
    try:
        info = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise SourceError(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):  # checked before fdopen, which refuses a directory
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SourceError(f"{path}: is a directory, not a file")
        raise SourceError(
            f"{path}: not a regular file (a device, FIFO or socket); save it to a file first"
        )
    with os.fdopen(fd, "rb") as file:
        try:
            if info.st_size > max_bytes:
                raise _too_big(path, info.st_size, max_bytes)
            data = file.read(max_bytes + 1)
        except OSError as exc:
            raise SourceError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise _too_big(path, len(data), max_bytes)
    return data


def _too_big(path: Path, size: int, max_bytes: int) -> SourceError:
    return SourceError(
        f"{path}: file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit; "
        "split it or raise [ingest] max_file_mb in config.toml"
    )


def modified_date(path: Path) -> date:
    """The file's modification day: the default capture date of a capture."""
    return datetime.fromtimestamp(path.stat().st_mtime).date()
