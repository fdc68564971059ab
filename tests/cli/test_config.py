"""Settings: defaults, then a TOML file, then FORECASTER_* variables, then flags; bad values name the setting."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from forecaster.cli import main
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


def test_defaults_are_sqlite_yahoo_and_after_each_markets_close(environ):
    settings = load_settings()

    assert settings.database == "sqlite:///forecaster.db"
    assert settings.source == "yahoo"
    assert settings.schedule is None  # no crontab: the daemon schedules each market after its close
    assert settings.timezone == "America/New_York"  # of an explicit schedule, and of the report schedule


def test_defaults_of_the_market_settings(environ):
    settings = load_settings()

    assert settings.calendars == {}
    assert settings.settle_minutes is None  # each market's own (forecaster.markets.settle_minutes)
    assert (settings.gap_wait_sessions, settings.overlap_sessions, settings.delisted_after_sessions) == (3, 15, 5)
    assert (settings.jump_threshold, settings.fetch_batch_size) == (0.40, 200)


@pytest.mark.parametrize("blank", ["", "  "])
def test_an_explicit_schedule_is_an_override_and_a_blank_one_is_none(environ, tmp_path, blank):
    environ(FORECASTER_SCHEDULE="30 18 * * 1-5")
    assert load_settings().schedule == "30 18 * * 1-5"

    config = tmp_path / "forecaster.toml"
    config.write_text(f'schedule = "{blank}"\n')
    environ(FORECASTER_SCHEDULE=blank, FORECASTER_CONFIG_FILE=str(config))
    assert load_settings().schedule is None


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
        ({"FORECASTER_TICKERS": "SPY,straße"}, "'straße' is not a symbol"),
        ({"FORECASTER_SETTLE_MINUTES": "-1"}, "settle_minutes"),
        ({"FORECASTER_SETTLE_MINUTES": "1441"}, "settle_minutes"),
        ({"FORECASTER_GAP_WAIT_SESSIONS": "61"}, "gap_wait_sessions"),
        ({"FORECASTER_OVERLAP_SESSIONS": "0"}, "overlap_sessions"),
        ({"FORECASTER_OVERLAP_SESSIONS": "251"}, "overlap_sessions"),
        ({"FORECASTER_JUMP_THRESHOLD": "0.04"}, "jump_threshold"),
        ({"FORECASTER_JUMP_THRESHOLD": "11"}, "jump_threshold"),
        ({"FORECASTER_JUMP_THRESHOLD": "nan"}, "jump_threshold"),
        ({"FORECASTER_JUMP_THRESHOLD": "inf"}, "jump_threshold"),
        ({"FORECASTER_FETCH_BATCH_SIZE": "0"}, "fetch_batch_size"),
        ({"FORECASTER_FETCH_BATCH_SIZE": "5001"}, "fetch_batch_size"),
        ({"FORECASTER_TIMEZONE": "Mars/Olympus"}, "setting timezone: .*not a time zone"),
        ({"FORECASTER_TIMEZONE": "../../etc/passwd"}, "setting timezone: .*not a time zone"),
        ({"FORECASTER_DELISTED_AFTER_SESSIONS": "0"}, "delisted_after_sessions"),
        ({"FORECASTER_DELISTED_AFTER_SESSIONS": "251"}, "delisted_after_sessions"),
        ({"FORECASTER_CALENDARS": "7203.T"}, "'7203.T' is not TICKER=CALENDAR or .SUFFIX=CALENDAR"),
        ({"FORECASTER_CALENDARS": "7203.T="}, "7203.T is given no calendar"),
        ({"FORECASTER_CALENDARS": "=XTKS"}, "'=XTKS' is not TICKER=CALENDAR"),
        ({"FORECASTER_CALENDARS": "S&P=XNYS"}, "ticker 'S&P' is not a symbol"),
        ({"FORECASTER_CALENDARS": ".T-X=XNYS"}, "suffix '.T-X' is not a market suffix"),
        ({"FORECASTER_CALENDARS": "7203.T=X TKS"}, "calendar 'X TKS' for 7203.T is not a calendar name"),
        ({"FORECASTER_CALENDARS": "7203.T=XTKSXTKSXTKSXTKS1"}, "is not a calendar name"),
        ({"FORECASTER_CALENDARS": "7203.T=Ｘ"}, "calendar 'Ｘ' for 7203.T is not a calendar name"),
        ({"FORECASTER_CALENDARS": "7203.T=XTKS,7203.t=XOSL"}, "7203.T is given two calendars, XTKS and XOSL"),
    ],
)
def test_a_bad_setting_is_a_user_error_naming_it(environ, variables, named):
    environ(**variables)

    with pytest.raises(UserError, match=named):
        load_settings()


def test_an_unknown_key_in_the_file_is_an_error(environ, tmp_path):
    config = tmp_path / "forecaster.toml"
    config.write_text('databse_url = "sqlite:///x.db"\n')

    with pytest.raises(UserError, match=r"unknown setting 'databse_url' \(did you mean database_url\?\)"):
        load_settings(config_file=str(config))


def test_a_misspelt_variable_is_exit_2_naming_it_and_the_nearest_setting(environ, tmp_path, capsys):
    database = tmp_path / "forecaster.db"
    environ(FORECASTER_TICKER="AAPL", FORECASTER_SOURCE="synthetic", FORECASTER_DATABASE_URL=f"sqlite:///{database}")

    code = main(["run", "--once"])

    err = capsys.readouterr().err
    assert code == 2
    assert err == "forecaster run: error: unknown variable FORECASTER_TICKER (did you mean FORECASTER_TICKERS?)\n"
    assert not database.exists()


def test_every_setting_and_its_file_variable_and_the_test_suites_own_variables_are_known(environ, tmp_path):
    environ(**{name: "" for name in setting_names()}, FORECASTER_TICKERS_FILE=str(tmp_path / "none"))
    environ(FORECASTER_TEST_POSTGRES_URL="postgresql://x", FORECASTER_TEST_CHAOS_SEED="1")

    with pytest.raises(UserError, match="FORECASTER_TICKERS_FILE: cannot read"):  # read, not refused
        load_settings()


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


def _notify_urls(settings) -> list[str]:
    return [url.get_secret_value() for url in settings.notify_urls]


def test_notification_urls_are_split_at_commas_and_whitespace_or_come_from_the_file_as_a_list(environ, tmp_path):
    assert load_settings().notify_urls == ()
    mail = "mailto://u:pw@example.com?to=a@example.com,b@example.com"  # the comma inside its query stays
    environ(FORECASTER_NOTIFY_URLS=f"{mail}, ntfy://alerts\njson://host/hook")

    assert _notify_urls(load_settings()) == [mail, "ntfy://alerts", "json://host/hook"]
    assert _notify_urls(load_settings().with_overrides(preset="seed")) == [mail, "ntfy://alerts", "json://host/hook"]

    config = tmp_path / "forecaster.toml"
    config.write_text('notify_urls = ["ntfy://alerts", "json://host/hook"]\n')
    environ(FORECASTER_NOTIFY_URLS="", FORECASTER_CONFIG_FILE=str(config))
    assert _notify_urls(load_settings()) == ["ntfy://alerts", "json://host/hook"]


def test_a_notification_url_never_shows_in_the_settings_text_nor_in_an_error_about_the_setting(environ, tmp_path):
    environ(FORECASTER_NOTIFY_URLS="json://user:hunter2@host/hook")
    assert "hunter2" not in repr(load_settings()) + str(load_settings())

    config = tmp_path / "forecaster.toml"
    config.write_text('notify_urls = ["json://user:hunter2@host/hook", 7]\n')
    environ(FORECASTER_NOTIFY_URLS="", FORECASTER_CONFIG_FILE=str(config))
    with pytest.raises(UserError) as refused:
        load_settings()

    assert str(refused.value).startswith("setting notify_urls: invalid value *** (expected apprise URLs")
    assert "hunter2" not in str(refused.value)


def test_every_setting_is_documented_in_the_readme():
    readme = (paths.ROOT / "README.md").read_text()

    assert [name for name in setting_names() if f"`{name}`" not in readme] == []


def test_calendars_from_the_environment_normalise_their_keys_and_keep_the_names_as_given(environ):
    environ(FORECASTER_CALENDARS=" 7203.t=XTKS, .xy=XNYS,,BTC-USD=24/7,eurusd=x=24/5")

    assert load_settings().calendars == {"7203.T": "XTKS", ".XY": "XNYS", "BTC-USD": "24/7", "EURUSD=X": "24/5"}


def test_calendars_from_the_file_are_a_table_or_the_same_string(environ, tmp_path):
    config = tmp_path / "forecaster.toml"
    config.write_text('[calendars]\n"7203.t" = "XTKS"\n".xy" = "XNYS"\n')
    assert load_settings(config_file=str(config)).calendars == {"7203.T": "XTKS", ".XY": "XNYS"}

    config.write_text('calendars = "7203.t=XTKS,.xy=XNYS"\n')
    assert load_settings(config_file=str(config)).calendars == {"7203.T": "XTKS", ".XY": "XNYS"}


def test_an_unquoted_dotted_key_in_the_file_is_an_error_that_says_to_quote_it(environ, tmp_path):
    config = tmp_path / "forecaster.toml"
    config.write_text('[calendars]\n7203.T = "XTKS"\n')  # TOML reads it as the table 7203 with a key T

    with pytest.raises(UserError, match=r'setting calendars: .*quote a key that holds a dot: "7203.T" = "XTKS"'):
        load_settings(config_file=str(config))


def test_each_ticker_of_a_watch_list_across_markets_gets_its_calendar(environ):
    environ(
        FORECASTER_TICKERS="7203.T,VOD.L,BTC-USD,SPY,FOO.XY,6758.T",
        FORECASTER_CALENDARS=".XY=XNYS,6758.T=XOSL",
    )

    settings = load_settings()

    assert settings.markets == {
        "7203.T": "XTKS",
        "VOD.L": "XLON",
        "BTC-USD": "24/7",
        "SPY": "XNYS",
        "FOO.XY": "XNYS",  # its suffix's override
        "6758.T": "XOSL",  # its own override, over the suffix table
    }
    assert settings.calendar_of("vod.l") == "XLON"  # any ticker, as written
    assert settings.calendar_of("ETH-USD") == "24/7"  # on the watch list or not


def test_an_unknown_suffix_on_the_watch_list_fails_at_load_naming_the_ticker_and_the_setting(environ):
    environ(FORECASTER_TICKERS="SPY,FOO.XY")

    with pytest.raises(UserError) as caught:
        load_settings()

    assert str(caught.value).startswith(
        "ticker FOO.XY: unknown exchange suffix .XY; set its calendar with FORECASTER_CALENDARS"
    )


def test_an_unknown_suffix_given_as_a_flag_fails_too(environ):
    with pytest.raises(UserError, match="ticker FOO.XY: unknown exchange suffix .XY"):
        load_settings().with_overrides(tickers="FOO.XY")


def test_calendar_of_a_malformed_or_unknown_ticker_is_a_user_error(environ):
    settings = load_settings()

    with pytest.raises(UserError, match="'S&P' is not a symbol"):
        settings.calendar_of("S&P")
    with pytest.raises(UserError, match=r"ticker \^FOO: an index whose exchange is not known"):
        settings.calendar_of("^FOO")


@pytest.mark.usefixtures("restored_logging")
def test_an_unknown_suffix_is_exit_2_before_the_database_is_touched(environ, tmp_path, capsys):
    database = tmp_path / "forecaster.db"
    environ(
        FORECASTER_SOURCE="synthetic", FORECASTER_TICKERS="SPY,FOO.XY", FORECASTER_DATABASE_URL=f"sqlite:///{database}"
    )

    code = main(["run", "--once"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "ticker FOO.XY: unknown exchange suffix .XY" in err
    assert not database.exists()


def test_a_watch_list_of_100000_tickers_comes_from_a_file_one_per_line(environ, tmp_path):
    """Too long for one environment variable (Linux caps one at 128 KiB, about 16,000 symbols)."""
    watch_list = tmp_path / "watchlist.txt"
    watch_list.write_text("".join(f"T{k:06d}\n" for k in range(100_000)))
    environ(FORECASTER_TICKERS_FILE=str(watch_list))

    settings = load_settings()

    assert len(settings.tickers) == 100_000 and settings.tickers[:2] == ("T000000", "T000001")
    assert set(settings.markets.values()) == {"XNYS"}
