"""Settings: defaults, then a TOML file, then FORECASTER_* variables; bad values name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecaster.config import Settings, load_settings, setting_names
from forecaster.errors import UserError


def test_defaults_are_sqlite_yahoo_and_weekdays_after_the_close():
    settings = load_settings(environ={})

    assert settings.database_url == "sqlite:///forecaster.db"
    assert settings.source == "yahoo"
    assert (settings.schedule, settings.timezone) == ("30 18 * * 1-5", "America/New_York")


def test_environment_overrides_the_file_which_overrides_the_defaults(tmp_path):
    config = tmp_path / "forecaster.toml"
    config.write_text('tickers = ["spy", "qqq"]\npreset = "seed"\nfetch_retries = 5\n')

    settings = load_settings(environ={"FORECASTER_CONFIG_FILE": str(config), "FORECASTER_PRESET": "default"})

    assert settings.tickers == ("SPY", "QQQ")
    assert settings.preset == "default"
    assert settings.fetch_retries == 5


def test_tickers_from_the_environment_are_comma_separated_and_upper_cased():
    assert load_settings(environ={"FORECASTER_TICKERS": " aapl, msft ,"}).tickers == ("AAPL", "MSFT")


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"FORECASTER_FETCH_RETRIES": "many"}, "fetch_retries"),
        ({"FORECASTER_FETCH_RETRIES": "-1"}, "fetch_retries"),
        ({"FORECASTER_TICKERS": ","}, "tickers"),
        ({"FORECASTER_LOG_FORMAT": "xml"}, "log_format"),
        ({"FORECASTER_CONFIG_FILE": "/nonexistent/forecaster.toml"}, "config file not found"),
    ],
)
def test_a_bad_setting_is_a_user_error_naming_it(environ, named):
    with pytest.raises(UserError, match=named):
        load_settings(environ=environ)


def test_an_unknown_key_in_the_file_is_an_error(tmp_path):
    config = tmp_path / "forecaster.toml"
    config.write_text('databse_url = "sqlite:///x.db"\n')

    with pytest.raises(UserError, match="unknown setting 'databse_url'"):
        load_settings(environ={}, config_file=str(config))


def test_flags_override_everything_but_only_when_given():
    settings = Settings().with_overrides(preset="seed", source=None)

    assert (settings.preset, settings.source) == ("seed", "yahoo")


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()

    assert [name for name in setting_names() if f"`{name}`" not in readme] == []
