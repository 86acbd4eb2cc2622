"""The configuration as frozen dataclasses: what `config.parse` builds from config.toml."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from digest.model import Profile
from digest.rank.settings import RankSettings

DEFAULT_STORE = "var/digest.sqlite3"
DEFAULT_MAX_FILE_MB = 32.0


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One `[[sources]]` table."""

    name: str
    kind: str
    path: str | None = None  #: a glob, relative to the config file
    url: str | None = None
    #: When the capture was taken; header days and year-less dates resolve against it.
    captured: date | None = None


@dataclass(frozen=True, slots=True)
class PublishConfig:
    """`[publish]`: the static archive."""

    #: Where `digest publish` writes the site (relative to the config file).
    dir: Path = Path("site")
    #: Absolute URL the site is served from (for sitemap.xml and feed links); "" = unknown.
    base_url: str = ""
    #: Days listed on the index page.
    recent_days: int = 14
    #: Entries per Atom feed.
    feed_entries: int = 50


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """`[delivery.smtp]`."""

    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"  #: "none" | "starttls" | "ssl"
    username: str = ""
    password_env: str = ""  #: name of the environment variable holding the password
    timeout: float = 30.0
    connections: int = 1  #: parallel connections for a batch


@dataclass(frozen=True, slots=True)
class SendgridConfig:
    """`[delivery.sendgrid]`."""

    api_key_env: str = "SENDGRID_API_KEY"
    host: str = "https://api.sendgrid.com"
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """`[delivery]`: how digests leave the machine."""

    backend: str = "outbox"  #: "outbox" | "smtp" | "sendgrid"
    from_addr: str = "papers-digest <digest@localhost>"
    #: Where the outbox backend writes .eml files (relative to the config file).
    outbox_dir: Path = Path("var/outbox")
    #: Public URL of `digest serve` for confirm/unsubscribe links ("" = the archive base_url).
    public_url: str = ""
    #: mailto address for List-Unsubscribe ("" = none).
    unsubscribe_mailto: str = ""
    max_attempts: int = 5
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    sendgrid: SendgridConfig = field(default_factory=SendgridConfig)


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """`[schedule]`: when `digest schedule` fetches (subscribers' sends follow their own times)."""

    cron: str = "0 6 * * *"  #: crontab: minute hour day month weekday
    timezone: str = "UTC"
    #: A run may start this late (e.g. after a reboot) and still run, once.
    misfire_grace_seconds: int = 3600


@dataclass(frozen=True, slots=True)
class WorkersConfig:
    """`[workers]`: `digest worker` on a PostgreSQL store (`digest/tasks.py`)."""

    #: Due readers one ranking shard plans and claims (a shard is one job).
    shard_readers: int = 50_000
    #: Deliveries one send-batch job sends.
    batch: int = 500
    #: Messages a second per sending account, shared by every worker (0: no limit).
    rate: float = 0.0
    #: Messages that may go at once after a quiet spell (the token bucket's size).
    burst: int = 100
    #: A job whose worker sent no heartbeat for this long is run again elsewhere.
    stalled_after_seconds: float = 30.0
    #: How long every worker pauses the account when the server says "too fast" (SMTP
    #: 421/451, SendGrid 429) without saying for how long (Retry-After, "try again in 5
    #: minutes").
    throttle_pause_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    path: Path  #: the config file (may not exist: then all defaults)
    #: The SQLite store; beside it live the signing secret and the unsubscribe queue.
    store_path: Path
    sources: tuple[SourceConfig, ...] = ()
    #: `[[profiles]]`, parsed once here (errors name the file and the profile).
    profiles: tuple[Profile, ...] = ()
    #: `[ranking]`, validated onto the ranker's settings (unknown keys are errors).
    ranking: RankSettings = field(default_factory=RankSettings)
    #: `[synonyms]`: a term -> the terms or phrases that mean the same.
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    templates_dir: Path | None = None
    preview_dir: Path = Path("var/preview")
    max_file_mb: float = DEFAULT_MAX_FILE_MB
    digest_title: str = "papers-digest"
    #: `[render] intro`: a short Markdown note shown under every email's header (sanitised).
    intro: str = ""
    publish: PublishConfig = field(default_factory=PublishConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    #: HMAC secret for tokens: DIGEST_SECRET in the environment wins over config.toml.
    secret: str = ""
    #: `[store] url`: a PostgreSQL store (`postgresql://user@host:port/db`) instead of
    #: the SQLite file; a password may be in it or in PGPASSWORD (never printed).
    store_url: str | None = None

    @property
    def store_location(self) -> Path | str:
        """What `store.open_store` opens: the URL when there is one, else the file."""
        return self.store_url or self.store_path

    @property
    def root(self) -> Path:
        return self.path.parent
