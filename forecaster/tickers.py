"""What a ticker symbol may be: the one rule for the watch list, price files and flags.

Yahoo's symbols use letters, digits and . - ^ = _ (BRK-B, ^GSPC, EURUSD=X, 0700.HK); they are
upper-cased, and no longer than the 32 characters the tables hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_LENGTH = 32
#: A symbol, upper-cased (a regular expression that Python and polars both read).
PATTERN = rf"^[A-Z0-9^][A-Z0-9.\-^=_]{{0,{MAX_LENGTH - 1}}}$"
_PATTERN = re.compile(PATTERN)


def normalise_ticker(text: str) -> str:
    """The ticker upper-cased and stripped; ValueError (naming it) when it is not a valid symbol."""
    ticker = text.strip().upper()
    if len(ticker) > MAX_LENGTH:
        raise ValueError(f"ticker {text.strip()!r} is longer than {MAX_LENGTH} characters")
    if not _PATTERN.match(ticker):
        raise ValueError(f"ticker {text.strip()!r} is not a symbol (letters, digits and . - ^ = _)")
    return ticker


def parse_tickers(value: str | Iterable[object]) -> tuple[str, ...]:
    """A watch list from "spy, qqq" or a list of names: normalised, duplicates dropped, never empty."""
    items = value.split(",") if isinstance(value, str) else [str(item) for item in value]
    tickers = tuple(dict.fromkeys(normalise_ticker(item) for item in items if item.strip()))
    if not tickers:
        raise ValueError("no ticker given")
    return tickers
