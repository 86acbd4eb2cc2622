"""The one schema of config.toml: every table, every key and the TOML types it takes.

`check_keys` walks the parsed TOML against `SCHEMA` before any value is used, so a typo
is an error instead of a silent default: `[stroe]` would open an empty new store,
`[[profile]]` would drop a profile, `secrte` would fall back to a random secret. The
error names the file, the key and the nearest known key (difflib), and never repeats the
value of an unknown key (it may be a secret pasted under the wrong name). `parse` then
checks the values themselves (ranges, addresses, URLs) with the same kind of message.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from digest.config.checks import SECRET_KEYS
from digest.errors import ConfigError
from digest.rank.settings import RankSettings

#: The TOML types a scalar key accepts (bool is never an int here).
Types = tuple[type, ...]
STRING: Types = (str,)
WHOLE: Types = (int,)
NUMBER: Types = (int, float)
WORDS: Types = (str, list)  #: a string or a list of strings
#: `captured`: a TOML date, a 'YYYY-MM-DD' string or a year.
DAY: Types = (date, str, int)


@dataclass(frozen=True, slots=True)
class Table:
    """A TOML table: its known keys, or `free` for a table whose keys are the user's."""

    keys: Mapping[str, Spec] = field(default_factory=dict)
    free: Types | None = None  #: the type of every value of a free-form table


@dataclass(frozen=True, slots=True)
class Array:
    """An array of tables (`[[sources]]`)."""

    of: Table


Spec = Table | Array | Types

#: Keys refused with their own message (`parse`: name an environment variable instead).
REFUSED = frozenset({"password", "api_key"})

SCHEMA = Table(
    {
        "store": Table({"path": STRING, "url": STRING}),
        "sources": Array(
            Table({"name": STRING, "kind": STRING, "path": STRING, "url": STRING, "captured": DAY})
        ),
        "profiles": Array(
            Table(
                {
                    "name": STRING,
                    "keywords": WORDS,
                    "exclude": WORDS,
                    "max_items": WHOLE,
                    "min_score": NUMBER,
                }
            )
        ),
        "ranking": Table(dict.fromkeys(RankSettings.__dataclass_fields__, NUMBER)),
        "synonyms": Table(free=WORDS),
        "render": Table(
            {"title": STRING, "preview_dir": STRING, "templates": STRING, "intro": STRING}
        ),
        "ingest": Table({"max_file_mb": NUMBER}),
        "publish": Table(
            {"dir": STRING, "base_url": STRING, "recent_days": WHOLE, "feed_entries": WHOLE}
        ),
        "schedule": Table({"cron": STRING, "timezone": STRING, "misfire_grace_seconds": WHOLE}),
        "security": Table({"secret": STRING}),
        "workers": Table(
            {
                "shard_readers": WHOLE,
                "batch": WHOLE,
                "rate": NUMBER,
                "burst": WHOLE,
                "stalled_after_seconds": NUMBER,
                "throttle_pause_seconds": NUMBER,
            }
        ),
        "delivery": Table(
            {
                "backend": STRING,
                "from": STRING,
                "outbox_dir": STRING,
                "public_url": STRING,
                "unsubscribe_mailto": STRING,
                "max_attempts": WHOLE,
                "smtp": Table(
                    {
                        "host": STRING,
                        "port": WHOLE,
                        "security": STRING,
                        "username": STRING,
                        "password_env": STRING,
                        "timeout": NUMBER,
                        "connections": WHOLE,
                    }
                ),
                "sendgrid": Table({"api_key_env": STRING, "host": STRING, "timeout": NUMBER}),
            }
        ),
    }
)


def kind_name(kind: Types | type) -> str:
    """How an error says which TOML type a key wants."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        str: "a string",
        int: "a whole number",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
        date: "a date (YYYY-MM-DD)",
    }
    if kinds == NUMBER:
        return "a number"
    if kinds == WORDS:
        return "a string or a list of strings"
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def check_keys(raw: Mapping[str, Any], file: str) -> None:
    """Raise ConfigError at the first unknown table or key, or value of the wrong type."""
    _check_table(SCHEMA, raw, file, "")


def _check_table(spec: Table, table: Mapping[str, Any], file: str, prefix: str) -> None:
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        known = spec.keys.get(key, spec.free)
        if known is None:
            if key in REFUSED:
                continue  # parse explains where a secret belongs
            raise ConfigError(f"{file}: {name}: {_unknown(spec, key, prefix, value)}")
        _check_value(known, value, file, name)


def _check_value(spec: Spec, value: Any, file: str, name: str) -> None:
    if isinstance(spec, Table):
        if not isinstance(value, dict):
            _wrong(file, name, value, f"must be a table ([{name}])")
        _check_table(spec, value, file, name)
    elif isinstance(spec, Array):
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            _wrong(file, name, value, f"must be a list of tables ([[{name}]] for each)")
        for i, item in enumerate(value):
            _check_table(spec.of, item, file, f"{name}[{i}]")
    else:
        if (isinstance(value, bool) and bool not in spec) or not isinstance(value, spec):
            _wrong(file, name, value, f"must be {kind_name(spec)}")
        if spec == WORDS and isinstance(value, list) and not all(isinstance(v, str) for v in value):
            _wrong(file, name, value, f"must be {kind_name(spec)}")


def _wrong(file: str, name: str, value: Any, why: str) -> None:
    key = name.rsplit(".", 1)[-1]
    shown = "(value not shown)" if key in SECRET_KEYS else _short(value)
    raise ConfigError(f"{file}: {name} = {shown}: {why}")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unknown(spec: Table, key: str, prefix: str, value: Any) -> str:
    """'unknown key; did you mean ...?' naming the nearest known key (value not repeated)."""
    what = "table" if isinstance(value, dict | list) and not prefix else "key"
    where = prefix or "the top level"
    nearest = difflib.get_close_matches(key, list(spec.keys), n=1, cutoff=0.6)
    if nearest:
        hint = nearest[0]
        shown = f"[{hint}]" if not prefix and isinstance(spec.keys[hint], Table) else hint
        if not prefix and isinstance(spec.keys[hint], Array):
            shown = f"[[{hint}]]"
        return f"unknown {what}; did you mean {shown}?"
    return f"unknown {what}; {where} takes: {', '.join(spec.keys)}"
