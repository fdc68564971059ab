"""Price sources: where daily prices come from, chosen by a spec string (FORECASTER_SOURCE)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from forecaster.errors import UserError
from forecaster.prices.sources.base import FetchResult, PriceSource

__all__ = ["FetchResult", "PriceSource", "source_from_spec"]

SPEC_FORMS = "yahoo, csv:PATH, synthetic or synthetic:SEED"


def source_from_spec(
    spec: str,
    *,
    tickers: Sequence[str] = (),
    calendar_of: Callable[[str], str] | None = None,
    batch_size: int = 200,
) -> PriceSource:
    """The source a spec names: "yahoo", "csv:PATH", "synthetic" or "synthetic:SEED" (SEED >= 0).

    A csv file must hold every one of `tickers` (the watch list): one it lacks is bad input,
    refused here before any work. `calendar_of` (Settings.calendar_of: the user's overrides
    included) says which calendar's sessions each ticker's synthetic prices fall on; without it,
    the one its symbol names; `batch_size` is how many tickers go to Yahoo per request. Each
    source module is imported only when named: yahoo pulls in pandas and yfinance."""
    kind, colon, argument = spec.strip().partition(":")
    kind, argument = kind.strip().lower(), argument.strip()
    if kind == "yahoo" and not colon:
        from forecaster.prices.sources.yahoo import YahooSource

        return YahooSource(batch_size=batch_size)
    if kind == "csv" and argument:
        from forecaster.prices.sources.csv_file import CsvSource

        source = CsvSource(argument)
        in_file = set(source.prices()["ticker"].unique())  # a missing or malformed file fails here, before any work
        absent = [t for t in tickers if t not in in_file]
        if absent:
            shown = ", ".join(absent[:10]) + (f" and {len(absent) - 10} more" if len(absent) > 10 else "")
            raise UserError(f"{argument}: no prices for {shown} of the watch list in the file")
        return source
    if kind == "synthetic" and (not colon or argument.isdigit()):
        from forecaster.prices.sources.synthetic import SyntheticSource

        if calendar_of is None:
            return SyntheticSource(seed=int(argument or 0))
        return SyntheticSource(seed=int(argument or 0), calendar_of=calendar_of)
    raise UserError(f"unknown price source {spec!r}: expected {SPEC_FORMS}")
