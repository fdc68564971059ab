"""Settings: defaults, then a TOML file, then FORECASTER_* variables, then flags; bad values name the setting."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from forecaster.config import load_settings, setting_names
from forecaster.errors import UserError
from tests.support import paths


@pytest.fixture
def environ(monkeypatch):
    """The process environment without any FORECASTER_* variable; returns a setter."""
    for name in [name for name in os.environ if name.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)

    def set_variables(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_variables


def test_defaults_are_sqlite_yahoo_and_weekdays_after_the_close(environ):
    settings = load_settings()

    assert settings.database == "sqlite:///forecaster.db"
    assert settings.source == "yahoo"
    assert (settings.schedule, settings.timezone) == ("30 18 * * 1-5", "America/New_York")


def test_environment_overrides_the_file_which_overrides_the_defaults(environ, tmp_path):
    config = tmp_path / "forecaster.toml"
    config.write_text('tickers = ["spy", "qqq"]\npreset = "seed"\nfetch_retries = 5\n')
    environ(FORECASTER_CONFIG_FILE=str(config), FORECASTER_PRESET="default")

    settings = load_settings()

    assert settings.tickers == ("SPY", "QQQ")
    assert settings.preset == "default"
    assert settings.fetch_retries == 5


def test_tickers_from_the_environment_are_comma_separated_upper_cased_and_deduplicated(environ):
    environ(FORECASTER_TICKERS=" aapl, msft ,brk-b,^gspc,AAPL")

    assert load_settings().tickers == ("AAPL", "MSFT", "BRK-B", "^GSPC")


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"FORECASTER_FETCH_RETRIES": "many"}, "fetch_retries"),
        ({"FORECASTER_FETCH_RETRIES": "-1"}, "fetch_retries"),
        ({"FORECASTER_TICKERS": ","}, "tickers"),
        ({"FORECASTER_TICKERS": "SPY,A" + "B" * 32}, "longer than 32 characters"),
        ({"FORECASTER_TICKERS": "SPY,S&P"}, "'S&P' is not a symbol"),
        ({"FORECASTER_LOG_FORMAT": "xml"}, "log_format"),
        ({"FORECASTER_CLAIM_SIZE": "1" + "0" * 20}, "claim_size"),
        ({"FORECASTER_LEASE_SECONDS": "1e20"}, "lease_seconds"),
        ({"FORECASTER_MISFIRE_GRACE_SECONDS": "1" + "0" * 20}, "misfire_grace_seconds"),
        ({"FORECASTER_FETCH_BACKOFF_SECONDS": "nan"}, "fetch_backoff_seconds"),
        ({"FORECASTER_DATABASE_BACKOFF_SECONDS": "inf"}, "database_backoff_seconds"),
        ({"FORECASTER_CONFIG_FILE": "/nonexistent/forecaster.toml"}, "config file not found"),
    ],
)
def test_a_bad_setting_is_a_user_error_naming_it(environ, variables, named):
    environ(**variables)

    with pytest.raises(UserError, match=named):
        load_settings()


def test_an_unknown_key_in_the_file_is_an_error(environ, tmp_path):
    config = tmp_path / "forecaster.toml"
    config.write_text('databse_url = "sqlite:///x.db"\n')

    with pytest.raises(UserError, match="unknown setting 'databse_url'"):
        load_settings(config_file=str(config))


def test_flags_override_everything_but_only_when_given(environ):
    environ(FORECASTER_PRESET="default", FORECASTER_SOURCE="synthetic")

    settings = load_settings().with_overrides(preset="seed", source=None, tickers="msft")

    assert (settings.preset, settings.source, settings.tickers) == ("seed", "synthetic", ("MSFT",))


def test_a_bad_flag_is_a_user_error_naming_it(environ):
    with pytest.raises(UserError, match="flag tickers"):
        load_settings().with_overrides(tickers=" , ")


def test_any_setting_can_come_from_a_file_named_by_its_file_variable(environ, tmp_path):
    secret = tmp_path / "database_url"
    secret.write_text("postgresql://forecaster:s3cret@db:5432/forecasts\n")
    environ(FORECASTER_DATABASE_URL_FILE=str(secret))

    assert load_settings().database == "postgresql://forecaster:s3cret@db:5432/forecasts"


def test_a_setting_given_both_directly_and_as_a_file_is_an_error(environ, tmp_path):
    (tmp_path / "url").write_text("sqlite:///a.db")
    environ(FORECASTER_DATABASE_URL="sqlite:///b.db", FORECASTER_DATABASE_URL_FILE=str(tmp_path / "url"))

    with pytest.raises(UserError, match="not both"):
        load_settings()


def test_the_database_password_setting_goes_into_the_url_quoted(environ):
    environ(
        FORECASTER_DATABASE_URL="postgresql+psycopg://forecaster@db:5432/forecasts",
        FORECASTER_DATABASE_PASSWORD="p@ss/w:rd%?",
    )

    url = sa.make_url(load_settings().database)

    assert (url.username, url.password, url.host, url.database) == ("forecaster", "p@ss/w:rd%?", "db", "forecasts")


def test_a_password_never_shows_in_the_settings_text(environ):
    environ(FORECASTER_DATABASE_URL="postgresql://u:hunter2@db/x", FORECASTER_DATABASE_PASSWORD="swordfish")

    shown = repr(load_settings()) + str(load_settings())

    assert "hunter2" not in shown and "swordfish" not in shown


def test_every_setting_is_documented_in_the_readme():
    readme = (paths.ROOT / "README.md").read_text()

    assert [name for name in setting_names() if f"`{name}`" not in readme] == []
