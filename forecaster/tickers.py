"""What a ticker symbol may be: the one rule for the watch list, price files and flags.

Yahoo's symbols use letters, digits and . - ^ = _ (BRK-B, ^GSPC, EURUSD=X, 0700.HK), start with a
letter, a digit or ^, and are no longer than the 32 characters the tables hold. The rule is checked
on the text as written, before any case folding: Unicode upper-casing turns "straße" into
"STRASSE", "ﬁx" into "FIX" and the Kelvin sign into "K", so a symbol must be ASCII to begin with.
Only then is it upper-cased (ASCII letters only, so nothing else can change).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_LENGTH = 32
#: A symbol, upper-cased (a regular expression that Python and polars both read).
PATTERN = rf"^[A-Z0-9^][A-Z0-9.\-^=_]{{0,{MAX_LENGTH - 1}}}$"
#: A symbol as written, in either case: checked before upper-casing. re.ASCII, and no IGNORECASE,
#: which would let [a-z] match the Kelvin sign.
_AS_WRITTEN = re.compile(rf"[A-Za-z0-9^][A-Za-z0-9.\-^=_]{{0,{MAX_LENGTH - 1}}}", re.ASCII)
#: A market suffix as written: a dot and ASCII letters or digits (.T, .L, .TWO).
_SUFFIX = re.compile(rf"\.[A-Za-z0-9]{{1,{MAX_LENGTH - 1}}}", re.ASCII)

SYMBOL_CHARACTERS = "ASCII letters, digits and . - ^ = _"
_LATER_ONLY = ".-=_"  # allowed, but not as the first character


def normalise_ticker(text: str) -> str:
    """The ticker stripped and upper-cased; ValueError (naming it) when it is not a valid symbol."""
    written = text.strip()
    if len(written) > MAX_LENGTH:
        raise ValueError(f"ticker {written!r} is longer than {MAX_LENGTH} characters")
    if not _AS_WRITTEN.fullmatch(written):
        raise ValueError(f"ticker {written!r} is not a symbol ({SYMBOL_CHARACTERS}{_why_not(written)})")
    return written.upper()  # ASCII only by now: upper() changes a-z and nothing else


def _why_not(written: str) -> str:
    """What breaks the rule in `written`, for the message: the first character not allowed, by code point."""
    if not written:
        return ""
    if written[0] in _LATER_ONLY:
        return f"; it starts with {written[0]!r}"
    bad = next((c for c in written if not (c.isascii() and (c.isalnum() or c in _LATER_ONLY or c == "^"))), None)
    return "" if bad is None else f"; it has {bad!r}, U+{ord(bad):04X}"


def normalise_suffix(text: str) -> str:
    """A market suffix (".t" -> ".T") stripped and upper-cased; ValueError (naming it) when it is not one."""
    written = text.strip()
    if not _SUFFIX.fullmatch(written):
        raise ValueError(f"suffix {written!r} is not a market suffix (a dot and ASCII letters or digits, e.g. .T)")
    return written.upper()


def parse_tickers(value: str | Iterable[object]) -> tuple[str, ...]:
    """A watch list from "spy, qqq" (commas or line breaks between, so a file may hold one per
    line) or a list of names: normalised, duplicates dropped, never empty."""
    items = re.split(r"[,\r\n]", value) if isinstance(value, str) else [str(item) for item in value]
    tickers = tuple(dict.fromkeys(normalise_ticker(item) for item in items if item.strip()))
    if not tickers:
        raise ValueError("no ticker given")
    return tickers
