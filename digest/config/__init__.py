"""config.toml -> frozen dataclasses.

    schema   the dataclasses (Config, SourceConfig, DeliveryConfig, ...)
    parse    load_config: validation whose errors name the file, the key and the value

Every error names the file, the key and the offending value, so a user can fix it
without reading code: `config.toml: sources[2].kind = 'lsting': unknown kind ...`.
Relative paths are resolved against the directory of the config file.
"""

from digest.config.parse import BACKENDS, load_config
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
)

__all__ = [
    "BACKENDS",
    "DEFAULT_MAX_FILE_MB",
    "DEFAULT_STORE",
    "Config",
    "DeliveryConfig",
    "PublishConfig",
    "ScheduleConfig",
    "SendgridConfig",
    "SmtpConfig",
    "SourceConfig",
    "load_config",
]
