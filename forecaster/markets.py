"""Which market each ticker trades on: the exchange_calendars calendar its sessions come from.

Resolved from the symbol as Yahoo writes it, unless the user says otherwise
(FORECASTER_CALENDARS: a ticker, or a whole suffix such as `.XY`, to a calendar name):

- a suffix names the exchange: `.T` Tokyo (XTKS), `.L` London (XLON), `.DE` Xetra (XETR), ... (the
  table below: yfinance's own MIC-to-suffix table, `yfinance.const._MIC_TO_YAHOO_SUFFIX`, inverted
  for the exchanges exchange_calendars has a calendar for, plus exchanges that trade on another's
  calendar: NSE on XBOM's, Shenzhen on XSHG's, ...);
- no suffix: New York (XNYS);
- a crypto pair (`BTC-USD`, `ETH-EUR`, `SOL-USDT`): `24/7`, every day, the session of day D
  closing at 00:00 UTC on D+1; a currency (`EURUSD=X`): `24/5`; a future (`ES=F`): `us_futures`;
- an index maps to its exchange (`^N225` XTKS, `^FTSE` XLON, `^GSPC` XNYS, ...).

A suffix or index this table does not know is bad input, never a silent New York: the message
names the ticker and how to set its calendar.
"""

from __future__ import annotations

from collections.abc import Mapping

from forecaster.errors import UserError

DEFAULT_CALENDAR = "XNYS"
CRYPTO_CALENDAR = "24/7"
CURRENCY_CALENDAR = "24/5"
FUTURES_CALENDAR = "us_futures"

#: Yahoo suffix -> calendar. From yfinance.const._MIC_TO_YAHOO_SUFFIX (MIC -> suffix), inverted where
#: exchange_calendars has the MIC (tests/test_markets.py checks the two agree), then the exchanges
#: it has no calendar of, on the calendar of the exchange they follow.
SUFFIX_CALENDARS: dict[str, str] = {
    ".BA": "XBUE",
    ".AX": "XASX",
    ".BR": "XBRU",
    ".SA": "BVMF",
    ".TO": "XTSE",
    ".V": "XTSX",
    ".SN": "XSGO",
    ".SS": "XSHG",
    ".CL": "XBOG",
    ".PR": "XPRA",
    ".CO": "XCSE",
    ".TL": "XTAL",
    ".NX": "XEUR",
    ".HE": "XHEL",
    ".PA": "XPAR",
    ".DU": "XDUS",
    ".F": "XFRA",
    ".HM": "XHAM",
    ".SG": "XSTU",
    ".DE": "XETR",
    ".HK": "XHKG",
    ".BD": "XBUD",
    ".IC": "XICE",
    ".BO": "XBOM",
    ".JK": "XIDX",
    ".IR": "XDUB",
    ".TA": "XTAE",
    ".T": "XTKS",
    ".RG": "XRIS",
    ".KL": "XKLS",
    ".MX": "XMEX",
    ".AS": "XAMS",
    ".NZ": "XNZE",
    ".OL": "XOSL",
    ".PS": "XPHS",
    ".WA": "XWAR",
    ".LS": "XLIS",
    ".RO": "XBSE",
    ".SI": "XSES",
    ".JO": "XJSE",
    ".KS": "XKRX",
    ".SR": "XSAU",
    ".ST": "XSTO",
    ".SW": "XSWX",
    ".TW": "XTAI",
    ".BK": "XBKK",
    ".IS": "XIST",
    ".AE": "XDFM",
    ".L": "XLON",
    # Exchanges without a calendar of their own, on the one they trade with.
    ".NS": "XBOM",  # National Stock Exchange of India: Mumbai's sessions
    ".SZ": "XSHG",  # Shenzhen: Shanghai's sessions
    ".CN": "XTSE",  # Canadian Securities Exchange
    ".NE": "XTSE",  # Cboe Canada
    ".KQ": "XKRX",  # KOSDAQ
    ".TWO": "XTAI",  # Taipei Exchange
    ".MI": "XMIL",  # Borsa Italiana
    ".MC": "XMAD",  # Bolsa de Madrid
    ".VI": "XWBO",  # Wiener Börse
    ".AT": "ASEX",  # Athens
    ".BE": "XFRA",  # the German regional exchanges follow Frankfurt's sessions
    ".MU": "XFRA",
    ".HA": "XFRA",
    ".BM": "XFRA",
}

#: Indices -> the calendar of the exchange they are computed on.
INDEX_CALENDARS: dict[str, str] = {
    "^GSPC": "XNYS",
    "^DJI": "XNYS",
    "^IXIC": "XNYS",
    "^NDX": "XNYS",
    "^RUT": "XNYS",
    "^VIX": "XNYS",
    "^NYA": "XNYS",
    "^N225": "XTKS",
    "^FTSE": "XLON",
    "^GDAXI": "XETR",
    "^FCHI": "XPAR",
    "^STOXX50E": "XETR",
    "^AEX": "XAMS",
    "^IBEX": "XMAD",
    "^SSMI": "XSWX",
    "^OMX": "XSTO",
    "^HSI": "XHKG",
    "^JKSE": "XIDX",
    "^AXJO": "XASX",
    "^BSESN": "XBOM",
    "^NSEI": "XBOM",
    "^KS11": "XKRX",
    "^TWII": "XTAI",
    "^GSPTSE": "XTSE",
    "^BVSP": "BVMF",
    "^MXX": "XMEX",
}

#: The quote currencies of Yahoo's crypto pairs (BTC-USD, ETH-EUR, SOL-USDT, ...).
CRYPTO_QUOTES = frozenset({"USD", "USDT", "USDC", "EUR", "GBP", "JPY", "BTC", "ETH", "CAD", "AUD", "KRW", "CHF", "INR"})

#: How long after a session's close its daily bar is taken as final, by calendar (minutes);
#: FORECASTER_SETTLE_MINUTES replaces all of them.
SETTLE_MINUTES: dict[str, int] = {CRYPTO_CALENDAR: 30, CURRENCY_CALENDAR: 30}
DEFAULT_SETTLE_MINUTES = 60

_HOW_TO_SET = "set its calendar with FORECASTER_CALENDARS (e.g. {example}=XNYS, any exchange_calendars name)"


def resolve_calendar(ticker: str, overrides: Mapping[str, str]) -> str:
    """The calendar name of a (normalised) ticker; a UserError naming it when its market is unknown.

    `overrides` maps tickers, or suffixes written with their dot (".XY"), to calendar names; a
    ticker's own entry wins over its suffix's."""
    if ticker in overrides:
        return overrides[ticker]
    stem, _, tail = ticker.rpartition(".")
    suffix = f".{tail}" if stem and tail else ""  # T.TO is Telus on Toronto: a one-letter stem is a stem
    if suffix and suffix in overrides:
        return overrides[suffix]
    if ticker in INDEX_CALENDARS:
        return INDEX_CALENDARS[ticker]
    if ticker.startswith("^"):
        raise UserError(f"ticker {ticker}: an index whose exchange is not known; {_HOW_TO_SET.format(example=ticker)}")
    if ticker.endswith("=X"):
        return CURRENCY_CALENDAR
    if ticker.endswith("=F"):
        return FUTURES_CALENDAR
    base, dash, quote = ticker.rpartition("-")
    if dash and base and quote in CRYPTO_QUOTES and not suffix:
        return CRYPTO_CALENDAR
    if suffix:
        if suffix in SUFFIX_CALENDARS:
            return SUFFIX_CALENDARS[suffix]
        raise UserError(
            f"ticker {ticker}: unknown exchange suffix {suffix}; {_HOW_TO_SET.format(example=ticker)}, "
            f"or {suffix}=NAME for every ticker with that suffix"
        )
    return DEFAULT_CALENDAR


def settle_minutes(calendar: str, setting: int | None) -> int:
    """Minutes after a session's close before its bar counts as final: the setting, else the calendar's default."""
    if setting is not None:
        return setting
    return SETTLE_MINUTES.get(calendar, DEFAULT_SETTLE_MINUTES)
