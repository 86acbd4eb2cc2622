"""The effective configuration as TOML-shaped data: what `digest config check` prints.

Every table and key of `keys.SCHEMA`, with the defaults filled in and paths resolved, so
an operator sees what a command will really use. Secrets are never shown: the signing
secret says only where it comes from; passwords and API keys are named by their
environment variable, with whether it is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from digest.config import checks
from digest.config.schema import Config
from digest.keywords import format_keyword
from digest.model import Profile

#: What stands where a secret's value would be.
MASK = "********"


def effective(config: Config, env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The whole effective config keyed like config.toml (TOML types only, no None)."""
    d, p = config.delivery, config.publish
    render: dict[str, Any] = {
        "title": config.digest_title,
        "preview_dir": str(config.preview_dir),
        "intro": config.intro,
    }
    if config.templates_dir is not None:
        render["templates"] = str(config.templates_dir)
    return {
        "store": {"path": str(config.store_path)}
        | ({"url": checks.redacted_url(config.store_url)} if config.store_url else {}),
        "sources": [{k: v for k, v in asdict(s).items() if v is not None} for s in config.sources],
        "profiles": [_profile(p) for p in config.profiles],
        "ranking": asdict(config.ranking),
        "synonyms": {k: list(v) for k, v in config.synonyms.items()},
        "render": render,
        "ingest": {"max_file_mb": config.max_file_mb},
        "publish": {
            "dir": str(p.dir),
            "base_url": p.base_url,
            "recent_days": p.recent_days,
            "feed_entries": p.feed_entries,
        },
        "schedule": asdict(config.schedule),
        "security": {"secret": _secret_source(config, env)},
        "delivery": {
            "backend": d.backend,
            "from": d.from_addr,
            "outbox_dir": str(d.outbox_dir),
            "public_url": d.public_url,
            "unsubscribe_mailto": d.unsubscribe_mailto,
            "max_attempts": d.max_attempts,
            "smtp": {
                **asdict(d.smtp),
                "password": _env_secret(d.smtp.password_env, env),
            },
            "sendgrid": {**asdict(d.sendgrid), "api_key": _env_secret(d.sendgrid.api_key_env, env)},
        },
    }


def _profile(profile: Profile) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": profile.name,
        "keywords": [format_keyword(k) for k in profile.keywords],
        "exclude": [format_keyword(k) for k in profile.exclude],
    }
    if profile.max_items is not None:
        out["max_items"] = profile.max_items
    if profile.min_score is not None:
        out["min_score"] = profile.min_score
    return out


def _secret_source(config: Config, env: Mapping[str, str]) -> str:
    """Where the signing secret comes from, never its value."""
    if env.get("DIGEST_SECRET"):
        return f"{MASK} (from the environment variable DIGEST_SECRET)"
    if config.secret:
        return f"{MASK} (from [security] secret in {config.path.name})"
    secret_file = config.store_path.parent / "secret"
    state = "exists" if secret_file.exists() else "made on first use"
    return f"(not set: the file {secret_file} is used; {state})"


def _env_secret(name: str, env: Mapping[str, str]) -> str:
    """A password or key named by its environment variable: set or not, never the value."""
    if not name:
        return "(none)"
    return f"{MASK} (from ${name})" if env.get(name) else f"(not set: ${name} is empty)"
