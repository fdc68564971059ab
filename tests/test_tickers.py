"""Ticker symbols as the exchange writes them: ASCII letters, digits and . - ^ = _, checked before upper-casing."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecaster.tickers import MAX_LENGTH, PATTERN, normalise_suffix, normalise_ticker, parse_tickers


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("brk-b", "BRK-B"),
        ("^gspc", "^GSPC"),
        ("eurusd=x", "EURUSD=X"),
        ("7203.t", "7203.T"),
        ("btc-usd", "BTC-USD"),
        ("es=f", "ES=F"),
        ("0700.HK", "0700.HK"),
        (" spy\n", "SPY"),
        ("a" * MAX_LENGTH, "A" * MAX_LENGTH),
    ],
)
def test_a_symbol_is_stripped_and_upper_cased(written, normalised):
    assert normalise_ticker(written) == normalised


@pytest.mark.parametrize(
    ("written", "what"),
    [
        ("straße", "'ß', U+00DF"),  # "STRASSE" once upper-cased
        ("ﬁx", "'ﬁ', U+FB01"),  # the ligature: "FIX" once upper-cased
        ("ı", "'ı', U+0131"),  # dotless i: "I" once upper-cased
        ("\u212a", "U+212A"),  # the Kelvin sign: looks like K, and "k" once lower-cased
        ("\u212aO", "U+212A"),
        ("ＳＰＹ", "U+FF33"),  # full-width letters
        ("S&P", "'&', U+0026"),
        ("BRK B", "' ', U+0020"),
    ],
)
def test_a_symbol_must_be_ascii_before_any_case_folding(written, what):
    with pytest.raises(ValueError) as caught:
        normalise_ticker(written)

    message = str(caught.value)
    assert message.startswith(f"ticker {written!r} is not a symbol (ASCII letters, digits and . - ^ = _")
    assert what in message
    assert "\n" not in message


@pytest.mark.parametrize("written", [".T", "-A", "=X", "_A"])
def test_a_symbol_starts_with_a_letter_a_digit_or_a_caret(written):
    with pytest.raises(ValueError, match=f"it starts with '{re.escape(written[0])}'"):
        normalise_ticker(written)


def test_a_symbol_is_at_most_32_characters_as_written():
    with pytest.raises(ValueError, match="longer than 32 characters"):
        normalise_ticker("A" * (MAX_LENGTH + 1))


@given(st.text(max_size=40))
def test_whatever_the_text_a_ticker_is_ascii_matches_the_table_pattern_and_keeps_its_length(text):
    try:
        ticker = normalise_ticker(text)
    except ValueError:
        return
    assert ticker.isascii()
    assert re.match(PATTERN, ticker)
    assert len(ticker) == len(text.strip())  # nothing was folded into more (or fewer) characters
    assert normalise_ticker(ticker) == ticker


def test_a_watch_list_is_normalised_deduplicated_and_never_empty():
    assert parse_tickers("spy, QQQ,,spy ,7203.t") == ("SPY", "QQQ", "7203.T")
    assert parse_tickers("spy\r\nqqq\n\n iwm \n") == ("SPY", "QQQ", "IWM")  # a file, one per line
    assert parse_tickers(["btc-usd", "^n225"]) == ("BTC-USD", "^N225")
    with pytest.raises(ValueError, match="no ticker given"):
        parse_tickers(" , ")


def test_a_market_suffix_is_a_dot_and_ascii_letters_or_digits():
    assert normalise_suffix(".t") == ".T"
    assert normalise_suffix(" .two ") == ".TWO"
    for bad in ("T", ".", "..T", ".T-X", ".ß"):
        with pytest.raises(ValueError, match=f"suffix {re.escape(repr(bad))} is not a market suffix"):
            normalise_suffix(bad)
