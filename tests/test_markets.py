"""Which calendar a ticker follows: from its Yahoo symbol, unless the user says otherwise; an unknown
market is a UserError naming the ticker and how to set its calendar, never a silent New York."""

from __future__ import annotations

import exchange_calendars
import pytest
from yfinance.const import _MIC_TO_YAHOO_SUFFIX

from forecaster.errors import UserError
from forecaster.markets import INDEX_CALENDARS, SUFFIX_CALENDARS, resolve_calendar, settle_minutes

NO_OVERRIDES: dict[str, str] = {}


@pytest.mark.parametrize(
    ("ticker", "calendar"),
    [
        ("SPY", "XNYS"),  # no suffix: New York
        ("BRK-B", "XNYS"),  # a share class, not a crypto pair
        ("7203.T", "XTKS"),
        ("VOD.L", "XLON"),
        ("SAP.DE", "XETR"),
        ("0700.HK", "XHKG"),
        ("RELIANCE.NS", "XBOM"),  # NSE has no calendar of its own: Mumbai's sessions
        ("000001.SZ", "XSHG"),  # nor Shenzhen: Shanghai's
        ("T.TO", "XTSE"),  # a one-letter stem is still a stem (Telus, Toronto)
        ("SHOP.V", "XTSX"),  # TSX Venture has its own calendar
        ("BTC-USD", "24/7"),
        ("ETH-EUR", "24/7"),
        ("SOL-USDT", "24/7"),
        ("EURUSD=X", "24/5"),
        ("ES=F", "us_futures"),
        ("^GSPC", "XNYS"),
        ("^N225", "XTKS"),
        ("^FTSE", "XLON"),
    ],
)
def test_a_ticker_follows_the_calendar_its_symbol_names(ticker, calendar):
    assert resolve_calendar(ticker, NO_OVERRIDES) == calendar


def test_an_unknown_suffix_is_a_user_error_naming_the_ticker_and_both_ways_to_set_it():
    with pytest.raises(UserError) as caught:
        resolve_calendar("FOO.XY", NO_OVERRIDES)

    assert str(caught.value) == (
        "ticker FOO.XY: unknown exchange suffix .XY; set its calendar with FORECASTER_CALENDARS "
        "(e.g. FOO.XY=XNYS, any exchange_calendars name), or .XY=NAME for every ticker with that suffix"
    )


def test_an_unknown_index_is_a_user_error_naming_it():
    with pytest.raises(UserError, match=r"ticker \^FOO: an index whose exchange is not known; .*FORECASTER_CALENDARS"):
        resolve_calendar("^FOO", NO_OVERRIDES)


def test_an_override_names_a_ticker_or_every_ticker_with_a_suffix_and_the_ticker_wins():
    overrides = {".XY": "XNYS", "BAR.XY": "XTKS", "7203.T": "XOSL", "^FOO": "XLON", "SPY": "24/7"}

    assert resolve_calendar("FOO.XY", overrides) == "XNYS"
    assert resolve_calendar("BAR.XY", overrides) == "XTKS"
    assert resolve_calendar("7203.T", overrides) == "XOSL"  # over the suffix table
    assert resolve_calendar("6758.T", overrides) == "XTKS"  # the table still holds for the others
    assert resolve_calendar("^FOO", overrides) == "XLON"
    assert resolve_calendar("SPY", overrides) == "24/7"


def test_a_suffix_override_replaces_the_table_for_that_suffix():
    assert resolve_calendar("VOD.L", {".L": "XDUB"}) == "XDUB"


def test_the_suffix_table_is_yfinances_for_every_exchange_exchange_calendars_has():
    known = set(exchange_calendars.get_calendar_names(include_aliases=True))
    from_yfinance = {f".{suffix}": mic for mic, suffix in _MIC_TO_YAHOO_SUFFIX.items() if suffix and mic in known}

    assert {suffix: SUFFIX_CALENDARS.get(suffix) for suffix in from_yfinance} == from_yfinance


def test_every_calendar_the_tables_name_is_one_exchange_calendars_has():
    known = set(exchange_calendars.get_calendar_names(include_aliases=True))
    named = set(SUFFIX_CALENDARS.values()) | set(INDEX_CALENDARS.values()) | {"XNYS", "24/7", "24/5", "us_futures"}

    assert sorted(named - known) == []


def test_a_bar_settles_after_the_setting_else_the_markets_default():
    assert settle_minutes("XNYS", None) == 60
    assert settle_minutes("XTKS", None) == 60
    assert settle_minutes("24/7", None) == 30
    assert settle_minutes("24/5", None) == 30
    assert settle_minutes("24/7", 0) == 0  # zero is a setting, not "unset"
    assert settle_minutes("XNYS", 120) == 120
