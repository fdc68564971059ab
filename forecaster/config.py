"""One settings object, read once: defaults < TOML file < FORECASTER_* environment < flags."""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from forecaster.errors import UserError
from forecaster.logs import register_url_password

ENV_PREFIX = "FORECASTER_"


@dataclass(frozen=True)
class Settings:
    """Every setting; each is also FORECASTER_<NAME> in the environment and <name> in the TOML file."""

    database_url: str = "sqlite:///forecaster.db"
    source: str = "yahoo"  # yahoo | csv:PATH | synthetic[:SEED]
    tickers: tuple[str, ...] = ("SPY", "QQQ", "IWM")
    preset: str = "default"
    schedule: str = "30 18 * * 1-5"  # crontab: minute hour day month day-of-week
    timezone: str = "America/New_York"
    report_schedule: str = "0 19 * * 1-5"
    report_dir: str = "reports"
    log_format: str = "human"  # human | json
    fetch_retries: int = 3  # extra attempts after a failed fetch, with exponential backoff
    fetch_backoff_seconds: float = 2.0
    database_retries: int = 5  # attempts after losing the database mid-cycle, with exponential backoff
    database_backoff_seconds: float = 5.0
    history_sessions: int = 300  # sessions fetched for a ticker seen for the first time
    misfire_grace_seconds: int = 3600
    claim_size: int = 500  # tickers a worker leases at once
    lease_seconds: int = 120  # a worker's lease; once expired (the worker died) another worker takes the tickers
    config_file: str | None = field(default=None, metadata={"env_only": True})

    def __post_init__(self) -> None:
        # Whatever later fails on this URL, its password never reaches a log line or an error.
        register_url_password(self.database_url)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the non-None values replaced (flags given on the command line)."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


#: Whole-number settings that must be at least 1 (the others must not be negative).
_AT_LEAST_ONE = ("history_sessions", "claim_size", "lease_seconds", "misfire_grace_seconds")


def _convert(name: str, raw: Any, default: Any) -> Any:
    try:
        if isinstance(default, tuple) or name == "tickers":
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            tickers = tuple(str(item).strip().upper() for item in items if str(item).strip())
            if not tickers:
                raise ValueError("no tickers")
            return tickers
        if isinstance(default, bool):
            return str(raw).lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            value = int(raw)
            if name in _AT_LEAST_ONE and value < 1:
                raise ValueError("must be at least 1")
            if value < 0:
                raise ValueError("must not be negative")
            return value
        if isinstance(default, float):
            value = float(raw)
            if not math.isfinite(value) or value < 0:
                raise ValueError("must be a finite number, not negative")
            return value
        return str(raw)
    except (TypeError, ValueError) as error:
        raise UserError(f"setting {name}: invalid value {raw!r} ({error})") from None


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid TOML ({error})") from None


def load_settings(environ: Mapping[str, str] | None = None, config_file: str | None = None) -> Settings:
    """Settings from the optional TOML file (FORECASTER_CONFIG_FILE or `config_file`),
    then the FORECASTER_* environment. Unknown keys in the file are errors."""
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get(f"{ENV_PREFIX}CONFIG_FILE")
    defaults = Settings()
    names = {f.name for f in fields(Settings)} - {"config_file"}
    values: dict[str, Any] = {}
    if config_file:
        for key, raw in _read_toml(config_file).items():
            if key not in names:
                raise UserError(f"{config_file}: unknown setting {key!r}")
            values[key] = _convert(key, raw, getattr(defaults, key))
    for name in names:
        raw = environ.get(f"{ENV_PREFIX}{name.upper()}")
        if raw is not None and raw != "":
            values[name] = _convert(name, raw, getattr(defaults, name))
    if values.get("log_format", "human") not in ("human", "json"):
        raise UserError(f"setting log_format: {values['log_format']!r} is not 'human' or 'json'")
    return Settings(**values, config_file=config_file)


def setting_names() -> list[str]:
    """The FORECASTER_* variable of every setting, for documentation and checks."""
    return [f"{ENV_PREFIX}{f.name.upper()}" for f in fields(Settings)]
