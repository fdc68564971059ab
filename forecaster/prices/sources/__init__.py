"""Price sources: where daily prices come from, chosen by a spec string (FORECASTER_SOURCE)."""

from __future__ import annotations

from forecaster.errors import UserError
from forecaster.prices.sources.base import FetchResult, PriceSource

__all__ = ["FetchResult", "PriceSource", "source_from_spec"]

SPEC_FORMS = "yahoo, csv:PATH, synthetic or synthetic:SEED"


def source_from_spec(spec: str) -> PriceSource:
    """The source a spec names: "yahoo", "csv:PATH", "synthetic" or "synthetic:SEED" (SEED >= 0).

    Each source module is imported only when named: yahoo pulls in pandas and yfinance."""
    kind, colon, argument = spec.strip().partition(":")
    kind, argument = kind.strip().lower(), argument.strip()
    if kind == "yahoo" and not colon:
        from forecaster.prices.sources.yahoo import YahooSource

        return YahooSource()
    if kind == "csv" and argument:
        from forecaster.prices.sources.csv_file import CsvSource

        source = CsvSource(argument)
        source.prices()  # a missing or malformed file fails here, before anything touches the database
        return source
    if kind == "synthetic" and (not colon or argument.isdigit()):
        from forecaster.prices.sources.synthetic import SyntheticSource

        return SyntheticSource(seed=int(argument or 0))
    raise UserError(f"unknown price source {spec!r}: expected {SPEC_FORMS}")
