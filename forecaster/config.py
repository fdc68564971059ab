"""One settings object, read once: defaults < TOML file < FORECASTER_* environment < flags.

pydantic-settings does the reading and the typed validation; every value is checked here,
before anything touches the database, and a bad one is a one-line UserError naming the
setting. Any setting can also come from a file named by FORECASTER_<NAME>_FILE (Docker and
Kubernetes secrets), and the database password may be given on its own
(FORECASTER_DATABASE_PASSWORD, or its _FILE form), so it needs no URL quoting.
"""

from __future__ import annotations

import difflib
import os
import tomllib
import zoneinfo
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from forecaster.errors import UserError
from forecaster.markets import resolve_calendar, settle_minutes
from forecaster.tickers import normalise_suffix, normalise_ticker, parse_tickers

ENV_PREFIX = "FORECASTER_"
FILE_SUFFIX = "_FILE"
#: FORECASTER_TEST_* variables belong to the test suite and the benchmarks, not to the job.
TEST_PREFIX = "FORECASTER_TEST_"


class Settings(BaseSettings):
    """Every setting; each is also FORECASTER_<NAME> in the environment and <name> in the TOML file."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="forbid", frozen=True)

    database_url: SecretStr = SecretStr("sqlite:///forecaster.db")
    database_password: SecretStr | None = None  # replaces the URL's password, so it needs no quoting
    source: str = "yahoo"  # yahoo | csv:PATH | synthetic[:SEED]
    tickers: Annotated[tuple[str, ...], NoDecode] = ("SPY", "QQQ", "IWM")
    preset: str = "default"
    calendars: Annotated[dict[str, str], NoDecode] = {}  # ticker or .SUFFIX -> exchange_calendars name
    schedule: str | None = None  # crontab (minute hour day month day-of-week); None: after each market's close
    timezone: str = "America/New_York"  # the zone of an explicit schedule and of the report schedule
    report_schedule: str = "0 19 * * 1-5"
    report_dir: str = "reports"
    report_charts: Annotated[tuple[str, ...], NoDecode] = ()  # tickers the report charts always, as the watch list
    log_format: Literal["human", "json"] = "human"
    fetch_retries: int = Field(3, ge=0, le=10)  # extra attempts after a failed fetch, with exponential backoff
    fetch_backoff_seconds: float = Field(2.0, ge=0, le=600, allow_inf_nan=False)
    database_retries: int = Field(5, ge=0, le=20)  # attempts after losing the database, with exponential backoff
    database_backoff_seconds: float = Field(5.0, ge=0, le=600, allow_inf_nan=False)
    history_sessions: int = Field(300, ge=1, le=20_000)  # sessions fetched before a ticker's first forecast
    misfire_grace_seconds: int = Field(3600, ge=1, le=7 * 86_400)
    claim_size: int = Field(500, ge=1, le=10_000)  # tickers a worker leases at once
    lease_seconds: int = Field(120, ge=1, le=86_400)  # a worker's lease; once expired another worker takes the tickers
    settle_minutes: int | None = Field(None, ge=0, le=1440)  # after a close until its bar is final; None: per market
    gap_wait_sessions: int = Field(3, ge=0, le=60)  # sessions a missing close is waited for before it is a gap
    overlap_sessions: int = Field(15, ge=1, le=250)  # latest stored sessions each fetch asks for again (restatements)
    # a close-to-close move beyond this fraction is looked at twice before it is stored
    jump_threshold: float = Field(0.40, ge=0.05, le=10, allow_inf_nan=False)
    fetch_batch_size: int = Field(200, ge=1, le=5000)  # tickers per request to Yahoo
    delisted_after_sessions: int = Field(5, ge=1, le=250)  # sessions in a row without data: probably delisted
    keep_states: int = Field(2, ge=1, le=10_000)  # model states kept per ticker, the latest (warm starts read one)
    keep_loss_curves: int = Field(5, ge=1, le=10_000)  # per-epoch loss curves kept per ticker, of the latest fits
    metrics_port: int | None = Field(None, ge=1, le=65_535)  # serve Prometheus' /metrics on this port
    heartbeat_file: str | None = None  # the daemon rewrites it every few seconds (`forecaster status --process`)
    # apprise URLs (e-mail, Slack, ntfy, a webhook...) the daemon sends its briefing and alerts to (forecaster.notify)
    notify_urls: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    config_file: str | None = None  # the TOML file these settings were read with (environment or --config only)

    @field_validator("tickers", mode="before")
    @classmethod
    def _tickers(cls, value: Any) -> tuple[str, ...]:
        return parse_tickers(value)

    @field_validator("report_charts", mode="before")
    @classmethod
    def _report_charts(cls, value: Any) -> tuple[str, ...]:
        """Written as the watch list is, or blank: none."""
        blank = not value or (isinstance(value, str) and not value.strip())
        return () if blank else parse_tickers(value)

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value  # blank: after each market's close

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
            raise ValueError("not a time zone of the IANA database, e.g. America/New_York or Europe/London") from None
        return value

    @field_validator("calendars", mode="before")
    @classmethod
    def _calendars(cls, value: Any) -> dict[str, str]:
        return parse_calendars(value)

    @field_validator("notify_urls", mode="before")
    @classmethod
    def _notify_urls(cls, value: Any) -> tuple[str, ...]:
        return split_notify_urls(value)

    @model_validator(mode="after")
    def _every_ticker_has_a_market(self) -> Settings:
        """An unknown suffix or index on the watch list fails here, at load (markets' UserError, exit 2)."""
        _ = self.markets  # resolving them is the check
        return self

    def calendar_of(self, ticker: str) -> str:
        """The exchange_calendars name `ticker` trades on: its entry in `calendars`, else its
        suffix's, else what its symbol says (forecaster.markets); a UserError naming it when unknown."""
        try:
            symbol = normalise_ticker(ticker)
        except ValueError as error:
            raise UserError(str(error)) from None
        return resolve_calendar(symbol, self.calendars)

    @property
    def markets(self) -> dict[str, str]:
        """{ticker: calendar name} for the watch list, in its order."""
        return {ticker: self.calendar_of(ticker) for ticker in self.tickers}

    def settle(self, calendar: str) -> timedelta:
        """How long after a session's close of `calendar` its bar counts as final."""
        return timedelta(minutes=settle_minutes(calendar, self.settle_minutes))

    @property
    def database(self) -> str:
        """The URL to connect with: FORECASTER_DATABASE_URL, with FORECASTER_DATABASE_PASSWORD in it if given."""
        url = self.database_url.get_secret_value()
        if self.database_password is None:
            return url
        import sqlalchemy as sa  # only for this: `status` should not pay for it before it needs a database

        try:
            parsed = sa.make_url(url)
        except (sa.exc.ArgumentError, ValueError):
            return url  # make_engine reports the malformed URL
        return parsed.set(password=self.database_password.get_secret_value()).render_as_string(hide_password=False)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _EnvFiles(settings_cls), _TomlFile(settings_cls, init_settings))

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the non-None values replaced (flags given on the command line), validated."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if not given:
            return self
        return _validated(lambda: Settings(**{**_explicit(self), **given}), source="flag")


class _EnvFiles(PydanticBaseSettingsSource):
    """FORECASTER_<NAME>_FILE: the setting's value is the file's content (trailing newline dropped)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{ENV_PREFIX}{field_name.upper()}{FILE_SUFFIX}"
        path = os.environ.get(variable)
        if not path:
            return None, field_name, False
        if os.environ.get(variable.removesuffix(FILE_SUFFIX)):
            raise UserError(f"setting {field_name}: give {variable.removesuffix(FILE_SUFFIX)} or {variable}, not both")
        try:
            return Path(path).read_text().rstrip("\r\n"), field_name, False
        except OSError as error:
            raise UserError(f"{variable}: cannot read {path} ({error.strerror})") from None

    def __call__(self) -> dict[str, Any]:
        values = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class _TomlFile(PydanticBaseSettingsSource):
    """The optional TOML file named by --config or FORECASTER_CONFIG_FILE; keys are setting names."""

    def __init__(self, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.path = getattr(init_settings, "init_kwargs", {}).get("config_file") or os.environ.get(
            f"{ENV_PREFIX}CONFIG_FILE"
        )

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path:
            return {}
        try:
            with open(self.path, "rb") as handle:
                values = tomllib.load(handle)
        except FileNotFoundError:
            raise UserError(f"{self.path}: config file not found") from None
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"{self.path}: not valid TOML ({error})") from None
        known = set(self.settings_cls.model_fields) - {"config_file"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"{self.path}: unknown setting {unknown[0]!r}{_nearest(unknown[0], known)}")
        return values


CALENDAR_NAME_LENGTH = 16
_CALENDARS_FORM = "TICKER=CALENDAR or .SUFFIX=CALENDAR, comma-separated, e.g. 7203.T=XTKS,.XY=XNYS,BTC-USD=24/7"


def parse_calendars(value: str | Mapping[str, object]) -> dict[str, str]:
    """The calendar overrides from "7203.T=XTKS, .XY=XNYS" or a mapping (a TOML table): keys normalised
    as tickers, or as suffixes when they start with "."; calendar names kept as given, checked only
    for their form (exchange_calendars knows the names: forecaster.calendar checks them when it
    builds one). The same key given two calendars is an error."""
    if isinstance(value, str):
        pairs: list[tuple[str, object]] = []
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            key, equals, calendar = item.rpartition("=")  # the last "=": a symbol may hold one (EURUSD=X=24/5)
            if not equals or not key.strip():
                raise ValueError(f"{item!r} is not {_CALENDARS_FORM}")
            pairs.append((key, calendar.strip()))
    elif isinstance(value, Mapping):
        pairs = [(str(key), name) for key, name in value.items()]
    else:
        raise ValueError(f"expected {_CALENDARS_FORM}, or a table of them")
    calendars: dict[str, str] = {}
    for written, name in pairs:
        key = normalise_suffix(written) if written.strip().startswith(".") else normalise_ticker(written)
        if not isinstance(name, str):
            hint = ' (in TOML, quote a key that holds a dot: "7203.T" = "XTKS")' if isinstance(name, dict) else ""
            raise ValueError(f"the calendar of {key} must be a name, got {name!r}{hint}")
        if not name:
            raise ValueError(f"{key} is given no calendar (expected {key}=NAME, e.g. {key}=XNYS)")
        if not (name.isascii() and len(name) <= CALENDAR_NAME_LENGTH) or any(c.isspace() or c in ",=" for c in name):
            raise ValueError(
                f"calendar {name!r} for {key} is not a calendar name (ASCII, no spaces, commas or =, "
                f"at most {CALENDAR_NAME_LENGTH} characters, e.g. XTKS or 24/7)"
            )
        if calendars.setdefault(key, name) != name:
            raise ValueError(f"{key} is given two calendars, {calendars[key]} and {name}")
    return calendars


def split_notify_urls(value: str | Sequence[str | SecretStr]) -> tuple[str, ...]:
    """The URLs of "URL, URL URL" (commas or whitespace, as apprise splits a list: a comma inside a
    URL's query stays) or of a list (a TOML array). Only split here: whether apprise can send to
    each is checked when the daemon starts (forecaster.notify), so other commands need not load
    every apprise plugin."""
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, Sequence) and all(isinstance(v, str | SecretStr) for v in value):
        texts = [v.get_secret_value() if isinstance(v, SecretStr) else v for v in value]
    else:
        raise ValueError("expected apprise URLs, comma- or space-separated, or a list of them")
    if not any(text.strip() for text in texts):
        return ()
    from apprise.utils.parse import parse_urls  # only for this: most commands never notify

    return tuple(parse_urls(texts))


def _explicit(settings: Settings) -> dict[str, Any]:
    """The values of a Settings object, as constructor arguments."""
    return {name: getattr(settings, name) for name in Settings.model_fields}


#: Settings whose value may hold a secret: an error about one never shows it.
_SECRET_SETTINGS = ("password", "database_url", "notify_urls")


def _validated(build: Any, *, source: str = "setting") -> Settings:
    """build(), with a validation error turned into one line naming the setting."""
    try:
        return build()
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "?"
        value = first.get("input")
        shown = "***" if any(secret in name for secret in _SECRET_SETTINGS) else repr(value)
        message = first["msg"].removeprefix("Value error, ")
        raise UserError(f"{source} {name}: invalid value {shown} ({message})") from None


def _nearest(name: str, known: set[str]) -> str:
    """ " (did you mean X?)" for the known name nearest to a misspelt one, or nothing."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _refuse_unknown_variables() -> None:
    """A FORECASTER_* variable that names no setting is a misspelling (FORECASTER_TICKER for
    FORECASTER_TICKERS): ignoring it would run the job on the defaults."""
    known = {variable for name in setting_names() for variable in (name, name + FILE_SUFFIX)}
    for variable in sorted(os.environ):
        upper = variable.upper()  # the variables are read case-insensitively
        if upper.startswith(ENV_PREFIX) and upper not in known and not upper.startswith(TEST_PREFIX):
            raise UserError(f"unknown variable {variable}{_nearest(upper, known)}")


def load_settings(config_file: str | None = None) -> Settings:
    """Settings from the optional TOML file (`config_file`, else FORECASTER_CONFIG_FILE), then the
    FORECASTER_* environment (and _FILE variables). Unknown keys in the file and unknown
    FORECASTER_* variables are errors."""
    _refuse_unknown_variables()
    return _validated(lambda: Settings(config_file=config_file) if config_file else Settings())


def setting_names() -> list[str]:
    """The FORECASTER_* variable of every setting, for documentation and checks."""
    return [f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields]
