"""load_config: config.toml validated into `config.schema` dataclasses.

Every error names the file, the key and the offending value, so a user can fix it
without reading code: `config.toml: sources[2].kind = 'lsting': unknown kind ...`.
Relative paths are resolved against the directory of the config file.
"""

from __future__ import annotations

import math
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any

from digest.config import checks
from digest.config.keys import check_keys, kind_name
from digest.config.schema import (
    DEFAULT_MAX_FILE_MB,
    DEFAULT_STORE,
    Config,
    DeliveryConfig,
    PublishConfig,
    ScheduleConfig,
    SendgridConfig,
    SmtpConfig,
    SourceConfig,
    WorkersConfig,
)
from digest.errors import ConfigError, QueryError, SourceError
from digest.model import Profile
from digest.rank.query import make_profile
from digest.rank.settings import RankSettings
from digest.sources import known_kinds
from digest.sources.files import read_capture

#: A config file is a few KB; more is a mistake (a log or a device given as --config).
MAX_CONFIG_BYTES = 1 << 20


def load_config(path: Path | str, *, required: bool = False) -> Config:
    """Read and validate a config file. A missing file gives the defaults unless `required`."""
    path = Path(path)
    if not path.exists():
        if required:
            raise ConfigError(f"{path}: no such config file; pass --config PATH or create it")
        root = path.absolute().parent
        return Config(
            path=path.absolute(),
            store_path=root / DEFAULT_STORE,
            preview_dir=root / "var/preview",
            publish=PublishConfig(dir=root / "site"),
            delivery=DeliveryConfig(outbox_dir=root / "var/outbox"),
        )
    try:
        text = read_capture(path, MAX_CONFIG_BYTES).decode("utf-8")
    except SourceError as exc:  # a FIFO or /dev/zero would block or read for ever
        why = str(exc).replace("the source's glob", "--config")
        why = why.replace(
            "split it or raise [ingest] max_file_mb in config.toml", "is it a config?"
        )
        raise ConfigError(why) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        raw = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return _parse(raw, path.absolute(), shown=str(path))


class _Reader:
    """Typed access to one table, with errors that name file, key and value."""

    def __init__(self, file: str, prefix: str, table: Any) -> None:
        self.file, self.prefix = file, prefix
        if not isinstance(table, dict):
            self.fail("", table, "must be a table")
        self.table: dict[str, Any] = table

    def fail(self, key: str, value: Any, why: str) -> None:
        """Raise the error naming file, key and value (a secret's value is never shown)."""
        name = f"{self.prefix}.{key}" if self.prefix and key else (self.prefix or key)
        shown = "(value not shown)" if key in checks.SECRET_KEYS else repr(value)
        raise ConfigError(f"{self.file}: {name} = {shown}: {why}")

    def check(self, key: str, value: Any, problem: str) -> Any:
        """`value`, unless `problem` says what is wrong with it (then fail)."""
        if problem:
            self.fail(key, value, problem)
        return value

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = self.table.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            self.fail(key, value, f"must be {kind_name(kind)}")
        if not isinstance(value, kind):
            self.fail(key, value, f"must be {kind_name(kind)}")
        return value

    def require(self, key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in self.table:
            raise ConfigError(f"{self.file}: {self.prefix}: missing key {key!r}")
        return self.get(key, kind)

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.table.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.fail(key, value, "must be a string or a list of strings")
        return ()


def _parse(raw: dict[str, Any], path: Path, shown: str) -> Config:
    """Validate the parsed TOML; `shown` is the config path as the user typed it."""
    root, file = path.parent, shown
    check_keys(raw, file)
    top = _Reader(file, "", raw)
    store = _Reader(file, "store", top.get("store", dict, {}))
    store_url = store.get("url", str)
    if store_url is not None:
        store.check("url", checks.redacted_url(store_url), checks.store_url_problem(store_url))
    sources: list[SourceConfig] = []
    for i, table in enumerate(top.get("sources", list, [])):
        r = _Reader(file, f"sources[{i}]", table)
        kind = r.require("kind", str)
        if kind not in known_kinds():
            r.fail("kind", kind, f"unknown kind; expected one of: {', '.join(known_kinds())}")
        src_path, url = r.get("path", str), r.get("url", str)
        if not src_path and not url:
            raise ConfigError(f"{file}: sources[{i}]: needs 'path' (a glob) or 'url'")
        captured = r.get("captured", (date, str, int))
        sources.append(
            SourceConfig(
                name=r.require("name", str),
                kind=kind,
                path=src_path,
                url=url,
                captured=_captured(r, captured),
            )
        )
    names = [s.name for s in sources]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{file}: sources.name = {name!r}: used by two sources")
    ranking_reader = _Reader(file, "ranking", top.get("ranking", dict, {}))
    ranking = _ranking(path, {k: ranking_reader.get(k, (int, float)) for k in ranking_reader.table})
    profiles: list[Profile] = []
    for i, table in enumerate(top.get("profiles", list, [])):
        r = _Reader(file, f"profiles[{i}]", table)
        max_items = r.get("max_items", int)
        if max_items is not None and max_items < 1:
            r.fail("max_items", max_items, "must be at least 1")
        min_score = r.get("min_score", (int, float))
        if min_score is not None and not 0 <= min_score <= 1:
            r.fail("min_score", min_score, "must be between 0 and 1")
        keywords = r.string_list("keywords")
        if not keywords:
            r.fail("keywords", table.get("keywords"), "needs at least one keyword")
        name = r.require("name", str)
        try:
            profiles.append(
                make_profile(
                    name,
                    keywords,
                    r.string_list("exclude"),
                    max_items,
                    float(min_score) if min_score is not None else None,
                )
            )
        except QueryError as exc:
            raise ConfigError(f"{path}: profile {name!r}: {exc}") from None
    syn_reader = _Reader(file, "synonyms", top.get("synonyms", dict, {}))
    synonyms = {k: syn_reader.string_list(k) for k in syn_reader.table}
    render = _Reader(file, "render", top.get("render", dict, {}))
    templates = render.get("templates", str)
    ingest = _Reader(file, "ingest", top.get("ingest", dict, {}))
    max_mb = float(ingest.get("max_file_mb", (int, float), DEFAULT_MAX_FILE_MB))
    if not math.isfinite(max_mb) or max_mb <= 0:
        ingest.fail("max_file_mb", max_mb, "must be a positive number")
    pub = _Reader(file, "publish", top.get("publish", dict, {}))
    base_url = pub.get("base_url", str, "")
    if base_url:
        pub.check("base_url", base_url, checks.url_problem(base_url))
    publish = PublishConfig(
        dir=root / pub.get("dir", str, "site"),
        base_url=base_url.rstrip("/") + "/" if base_url else "",
        recent_days=_positive(pub, "recent_days", 14),
        feed_entries=_positive(pub, "feed_entries", 50),
    )
    return Config(
        path=path,
        publish=publish,
        delivery=_delivery(_Reader(file, "delivery", top.get("delivery", dict, {})), root),
        secret=_secret(_Reader(file, "security", top.get("security", dict, {}))),
        schedule=_schedule(_Reader(file, "schedule", top.get("schedule", dict, {}))),
        workers=_workers(_Reader(file, "workers", top.get("workers", dict, {}))),
        store_path=root / store.get("path", str, DEFAULT_STORE),
        store_url=store_url,
        sources=tuple(sources),
        profiles=tuple(profiles),
        ranking=ranking,
        synonyms=synonyms,
        templates_dir=root / templates if templates else None,
        preview_dir=root / render.get("preview_dir", str, "var/preview"),
        max_file_mb=max_mb,
        digest_title=render.get("title", str, "papers-digest"),
        intro=render.get("intro", str, ""),
    )


BACKENDS = ("outbox", "smtp", "sendgrid")


def _delivery(r: _Reader, root: Path) -> DeliveryConfig:
    backend = r.get("backend", str, "outbox")
    if backend not in BACKENDS:
        r.fail("backend", backend, f"unknown backend; expected one of: {', '.join(BACKENDS)}")
    smtp_r = _Reader(r.file, "delivery.smtp", r.get("smtp", dict, {}))
    sg_r = _Reader(r.file, "delivery.sendgrid", r.get("sendgrid", dict, {}))
    security = smtp_r.get("security", str, "none")
    if security not in ("none", "starttls", "ssl"):
        smtp_r.fail("security", security, "must be none, starttls or ssl")
    port = smtp_r.get("port", int, 465 if security == "ssl" else 25)
    if not 0 < port < 65536:
        smtp_r.fail("port", port, "must be a port number")
    if "password" in smtp_r.table or "api_key" in sg_r.table:
        raise ConfigError(
            f"{r.file}: delivery: secrets do not belong in config.toml; name an environment "
            "variable with password_env / api_key_env instead"
        )
    host = smtp_r.get("host", str, "127.0.0.1")
    username = smtp_r.get("username", str, "")
    if not username.isprintable() or username != username.strip():
        smtp_r.fail("username", username, "holds spaces or control characters")
    password_env = smtp_r.get("password_env", str, "")
    smtp = SmtpConfig(
        host=smtp_r.check("host", host, checks.host_problem(host)),
        port=port,
        security=security,
        username=username,
        password_env=password_env and _env_name(smtp_r, "password_env", password_env),
        timeout=_timeout(smtp_r),
        connections=_positive(smtp_r, "connections", 1),
    )
    sg_host = sg_r.get("host", str, "https://api.sendgrid.com")
    sendgrid = SendgridConfig(
        api_key_env=_env_name(
            sg_r, "api_key_env", sg_r.get("api_key_env", str, "SENDGRID_API_KEY")
        ),
        host=sg_r.check("host", sg_host, checks.url_problem(sg_host)),
        timeout=_timeout(sg_r),
    )
    from_addr = r.get("from", str, "papers-digest <digest@localhost>")
    public_url = r.get("public_url", str, "")
    mailto = r.get("unsubscribe_mailto", str, "")
    return DeliveryConfig(
        backend=backend,
        from_addr=r.check("from", from_addr, checks.sender_problem(from_addr)),
        outbox_dir=root / r.get("outbox_dir", str, "var/outbox"),
        public_url=public_url and r.check("public_url", public_url, checks.url_problem(public_url)),
        unsubscribe_mailto=mailto
        and r.check("unsubscribe_mailto", mailto, checks.address_problem(mailto)),
        max_attempts=_positive(r, "max_attempts", 5),
        smtp=smtp,
        sendgrid=sendgrid,
    )


def _timeout(r: _Reader) -> float:
    value = float(r.get("timeout", (int, float), 30.0))
    return float(r.check("timeout", value, checks.timeout_problem(value)))


def _env_name(r: _Reader, key: str, value: str) -> str:
    return str(r.check(key, value, checks.env_name_problem(value)))


def _secret(r: _Reader) -> str:
    """`[security] secret`: at least 32 bytes (the value is never shown in an error)."""
    secret = str(r.get("secret", str, ""))
    return secret and str(r.check("secret", secret, checks.secret_problem(secret)))


#: `[schedule] cron` when none is given (ScheduleConfig's default).
_DEFAULT_CRON = ScheduleConfig().cron


def _schedule(r: _Reader) -> ScheduleConfig:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    cron = r.get("cron", str, _DEFAULT_CRON)
    timezone = r.get("timezone", str, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        r.fail("timezone", timezone, "unknown time zone; use an IANA name like Europe/Berlin")
    # Every command loads the config, and apscheduler (asyncio, importlib.metadata) costs
    # ~0.15 s of start-up: the default expression is known good, any other is checked.
    if cron != _DEFAULT_CRON:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(cron, timezone=timezone)
        except ValueError as exc:
            r.fail("cron", cron, f"not a crontab expression ({exc}); e.g. '0 6 * * *'")
    return ScheduleConfig(cron, timezone, _positive(r, "misfire_grace_seconds", 3600))


def _workers(r: _Reader) -> WorkersConfig:
    rate = float(r.get("rate", (int, float), 0.0))
    if not math.isfinite(rate) or rate < 0:
        r.fail("rate", rate, "must be a number of messages a second >= 0 (0: no limit)")
    stalled = float(r.get("stalled_after_seconds", (int, float), 30.0))
    if not math.isfinite(stalled) or stalled < 1:
        r.fail("stalled_after_seconds", stalled, "must be at least 1")
    pause = float(r.get("throttle_pause_seconds", (int, float), 60.0))
    if not math.isfinite(pause) or not 1 <= pause <= 86400:
        r.fail("throttle_pause_seconds", pause, "must be from 1 to 86400 (a day)")
    return WorkersConfig(
        shard_readers=_positive(r, "shard_readers", 50_000),
        batch=_positive(r, "batch", 500),
        rate=rate,
        burst=_positive(r, "burst", 100),
        stalled_after_seconds=stalled,
        throttle_pause_seconds=pause,
    )


def _ranking(path: Path, table: dict[str, Any]) -> RankSettings:
    """`[ranking]` onto RankSettings (keys checked by `check_keys`); bad values are named."""
    defaults = RankSettings()
    values: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(getattr(defaults, key), int) and not float(value).is_integer():
            raise ConfigError(f"{path}: ranking.{key} = {value!r}: must be a whole number")
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{path}: ranking.{key} = {value!r}: must be a finite number >= 0")
        values[key] = type(getattr(defaults, key))(value)
    settings = RankSettings(**values)
    for key in (
        "b",
        "exact_share",
        "scattered_credit",
        "default_min_score",
        "cutoff_ratio",
        "like_dense",
    ):
        if getattr(settings, key) > 1:
            raise ConfigError(
                f"{path}: ranking.{key} = {getattr(settings, key)!r}: must be between 0 and 1"
            )
    if settings.popularity_weight + settings.recency_weight > 1:
        raise ConfigError(
            f"{path}: ranking.popularity_weight + ranking.recency_weight = "
            f"{settings.popularity_weight + settings.recency_weight:g}: must be at most 1"
        )
    if settings.default_max_items < 1:
        raise ConfigError(
            f"{path}: ranking.default_max_items = {settings.default_max_items}: must be at least 1"
        )
    return settings


def _positive(r: _Reader, key: str, default: int) -> int:
    value = r.get(key, int, default)
    if value < 1:
        r.fail(key, value, "must be at least 1")
    return int(value)


def _captured(r: _Reader, value: Any) -> date | None:
    """`captured` may be a TOML date, a 'YYYY-MM-DD' string, or a year (the year's last day)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if text.isdigit() and len(text) == 4:
            return date(int(text), 12, 31)
        return date.fromisoformat(text)
    except ValueError:
        r.fail("captured", value, "must be a date (YYYY-MM-DD) or a year (YYYY)")
    return None
