"""The published archive's files, served with less than Starlette's StaticFiles allows.

StaticFiles already refuses a path that resolves outside the directory (symlinks out of
the site included) and a NUL byte, and lists no directory. On top of that:

- no dotfile or dot directory (`.publish-manifest.json`, a lock, `.git`): the archive's
  build state is not part of the archive;
- no `..` component at all, even one that would stay inside;
- a path the file system refuses in any way (too long, a symlink loop, no permission) is
  the same 404 as a missing file, never a 500 (or StaticFiles' 401 for permissions).

`check_site_dir` refuses, before the server starts, a directory that holds the store,
the signing secret or the config file (a `[publish] dir = "."` would serve them all).
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.routing import get_route_path
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from digest.config import Config
from digest.errors import ConfigError
from digest.store.journal import journal_path


class SiteFiles(StaticFiles):
    """StaticFiles without dotfiles, `..` or file-system errors (all 404)."""

    def get_path(self, scope: Scope) -> str:
        parts = get_route_path(scope).split("/")
        if any(p.startswith(".") or "\x00" in p or "\\" in p for p in parts):
            raise HTTPException(status_code=404)
        return super().get_path(scope)

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        try:
            return super().lookup_path(path)
        except (OSError, ValueError):
            return "", None


def check_site_dir(config: Config, store_path: Path, directory: Path) -> None:
    """Refuse (ConfigError) to serve `directory` if the store, its unsubscribe queue, the
    signing secret or the config file is in it or below it."""
    served = directory.resolve()
    private = {
        "the store": store_path,
        "the unsubscribe queue": journal_path(store_path),
        "the signing secret": store_path.parent / "secret",
        "config.toml": config.path if config.path.exists() else None,
    }
    for what, path in private.items():
        if path is not None and path.resolve().is_relative_to(served):
            raise ConfigError(
                f"{directory}: will not serve a directory that holds {what} ({path}); "
                "set [publish] dir in config.toml (or --site) to a folder of its own"
            )
