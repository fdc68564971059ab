"""Forecast accuracy and prediction intervals out of sample, through the real backfill, on real
daily prices, next to the naive forecast and simple peers on the same rows.

    python benchmarks/accuracy.py [--span held-out|tuning] [--universes ETFs,US stocks,Europe,Crypto]
                                  [--presets default,seed] [--seed-sessions N] [--no-ets] [--save DIR]

For each price file and preset, a fresh SQLite database in a temporary directory is
migrated and `forecaster.cycle.backfill` walks every session of the span with a CsvSource
over the file: each forecast is made after the close of `as_of` for the next session, from
prices through `as_of` only, warm-started from the previous session's state, exactly as the
daemon does. Forecasts are read back through the `prediction_accuracy` view. The naive
forecast is the last close (`last_close`).

Peers, on exactly the rows the default preset forecast (same ticker, as_of and target),
each from the closes through as_of only:
  drift  random walk with drift: last close · exp(mean of the last 252 daily log returns)
  ar1    AR(1) on daily log returns with an intercept, least squares on the last 252, refit each session
  ets    statsforecast AutoETS (season_length=1, its own model choice) on the last 252 closes,
         refit each session. A benchmark-only dependency: pip install -e '.[bench]'
         (without it the column is skipped, with a line saying so; --no-ets skips it too)

Point scores: MAE / naive MAE and RMSE / naive RMSE on errors in percent of the last close
(so that a 2,000-point index does not outweigh a 40-dollar stock when pooled); DM is the
Diebold-Mariano t statistic of the absolute percent error against naive's (negative: better
than naive; pooled: on the per-session mean over tickers; |t| > 2 is significant at 5 %).

Intervals (forecaster.model.intervals, as the cycle stored them with each forecast): coverage
of the 80 % and 95 % intervals, mean width in percent of the last close, and the Winkler interval score in percent of the last close (width plus 2/α
times the miss; lower is better), against two other rules on the same rows: the same
method on the naive forecast's errors ("naive rule", for the width ratio) and a plain
conformal rule on the last 60 absolute log errors of the model, not scaled by volatility
("fixed 60", for the Winkler ratio).

Every ticker is forecast on its own exchange's calendar (forecaster.markets): the global file
(London, Stockholm, Xetra, crypto every day) is scored per ticker, each its own market, and
pooled per universe. The default preset was tuned on the tuning spans only; the held-out spans
come later and were not looked at while tuning. The Europe and Crypto universes were never tuned
on: they have a held-out span only (--span tuning skips them, saying so). The seed preset (raw closes, 2000 first-fit epochs) can be
limited to the first N sessions of a span with --seed-sessions.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from forecaster.calendar import TradingCalendar, trading_calendar
from forecaster.context import CycleContext
from forecaster.markets import resolve_calendar
from forecaster.model import intervals as iv
from forecaster.model.presets import PRESETS, Preset
from forecaster.prices.files import read_price_file
from forecaster.prices.sources.csv_file import CsvSource
from forecaster.report import metrics
from forecaster.store.accuracy import load_predictions
from forecaster.store.database import make_engine, upgrade
from forecaster.walks import backfill

#: shared/data beside the checkout, or the workplace's /work/shared/data for a clone made elsewhere.
DATA = next(
    (p for p in (Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data")) if p.is_dir()),
    Path(__file__).resolve().parents[2] / "shared" / "data",
)
PEER_WINDOW = 252  # returns (drift, ar1) or closes (ets) each peer fits on
FIXED_WINDOW = 60  # the plain conformal rule the intervals are compared with
INSTALL_BENCH = "pip install -e '.[bench]'"


@dataclass(frozen=True)
class Span:
    start: date  # first as_of
    end: date  # last as_of


@dataclass(frozen=True)
class Universe:
    label: str
    default_file: Path
    tickers: tuple[str, ...]
    tuning: Span | None  # None: never tuned on, held-out only
    held_out: Span

    def calendar(self) -> TradingCalendar:
        """The calendar of the universe's first ticker (its spans are in that market's sessions)."""
        return trading_calendar(resolve_calendar(self.tickers[0], {}))

    def markets(self) -> dict[str, str]:
        return {ticker: resolve_calendar(ticker, {}) for ticker in self.tickers}


UNIVERSES = (
    Universe(
        "ETFs",
        DATA / "etf_daily_long.csv",
        ("SPY", "QQQ", "IWM", "EFA", "TLT"),
        tuning=Span(date(2014, 1, 2), date(2016, 12, 30)),
        held_out=Span(date(2017, 1, 3), date(2019, 12, 30)),
    ),
    Universe(
        "US stocks",
        DATA / "us_daily_2007_2016_long.csv",
        ("AAPL", "IBM", "MSFT", "SBUX", "^GSPC"),
        tuning=Span(date(2010, 1, 4), date(2012, 12, 31)),
        held_out=Span(date(2013, 1, 2), date(2016, 2, 29)),
    ),
    Universe(
        "Europe",
        DATA / "global_daily_long.csv",
        ("BP.L", "ABB.ST", "ADS.DE"),  # London (in pence), Stockholm, Xetra
        tuning=None,
        held_out=Span(date(2024, 3, 1), date(2025, 4, 30)),  # after the 300 sessions of history the file has
    ),
    Universe(
        "Crypto",
        DATA / "global_daily_long.csv",
        ("SOL-USD",),  # every calendar day; -42.3 % on 2022-11-09
        tuning=None,
        held_out=Span(date(2022, 1, 1), date(2023, 8, 28)),
    ),
)


def run_backfill(path: Path, tickers: tuple[str, ...], preset: Preset, span: Span) -> tuple[pl.DataFrame, float]:
    """Every forecast of `preset` over `span`, with its outcome, from a fresh database; and the wall time."""
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite:///{directory}/accuracy.db")
        try:
            upgrade(engine)
            # The backfill fetches history_sessions (300) before its first session: a full window at once.
            context = CycleContext(engine=engine, source=CsvSource(path), tickers=tickers, preset=preset)
            started = time.perf_counter()
            backfill(context, span.start, span.end)
            elapsed = time.perf_counter() - started
            with engine.connect() as connection:
                frame = load_predictions(connection=connection, preset=preset.name)
        finally:
            engine.dispose()
    return frame.filter(pl.col("actual_close").is_not_null()), elapsed


# --------------------------------------------------------------------------- intervals


def _mean(column: pl.Series) -> float:
    value = column.mean()
    assert isinstance(value, int | float), f"the mean of {column.name} is {value!r}"
    return float(value)


def naive_rule_frame(frame: pl.DataFrame, prices: pl.DataFrame, preset: Preset) -> pl.DataFrame:
    """The interval method applied to the naive forecast's errors: intervals around the last close,
    replayed over the same rows as the cycle would have made them."""
    replayed = iv.replay(
        frame.select("ticker", "as_of", "target_session", pl.col("last_close").alias("predicted_close")),
        prices,
        closes_per_forecast=preset.window + preset.lags,
    )
    return frame.drop("lower_80", "upper_80", "lower_95", "upper_95", "interval_method").join(
        replayed.drop("target_session", "predicted_close"), on=["ticker", "as_of"], how="left"
    )


def fixed_window_frame(frame: pl.DataFrame, window: int = FIXED_WINDOW) -> pl.DataFrame:
    """Plain conformal on each ticker's last `window` absolute log errors, not scaled by volatility,
    with the same quantile rule; no interval before MIN_SCORES errors."""
    parts = []
    for (_,), part in frame.sort("ticker", "as_of").group_by("ticker", maintain_order=True):
        errors = np.abs(np.log(part["actual_close"].to_numpy() / part["predicted_close"].to_numpy()))  # (n,)
        n = len(errors)
        history = np.full((n, window), np.nan)  # row j: the errors of forecasts before j, the last `window`
        for j in range(n):
            seen = errors[max(0, j - window) : j]
            if len(seen):
                history[j, window - len(seen) :] = seen
        enough = np.isfinite(history).sum(axis=1) >= iv.MIN_SCORES
        columns = {}
        for level in iv.LEVELS:
            q = np.where(enough, iv.conformal_quantile(history, level), np.nan)
            name = round(level * 100)
            columns[f"lower_{name}"] = part["predicted_close"].to_numpy() * np.exp(-q)
            columns[f"upper_{name}"] = part["predicted_close"].to_numpy() * np.exp(q)
        parts.append(
            part.drop("lower_80", "upper_80", "lower_95", "upper_95").with_columns(
                **{k: pl.Series(v, nan_to_null=True) for k, v in columns.items()}
            )
        )
    return pl.concat(parts)


def _interval_scores(frame: pl.DataFrame, level: int) -> pl.DataFrame:
    """Per row: covered, width and Winkler score of the level-% interval (the report's definitions),
    the last two in % of the last close."""
    return frame.select(
        "ticker",
        metrics.covered(level).alias("covered"),
        (100.0 * metrics.width(level) / pl.col("last_close")).alias("width"),
        (100.0 * metrics.winkler(level) / pl.col("last_close")).alias("winkler"),
    )


#: The width of a table's first column: "ABB.ST XSTO", "SOL-USD 24/7", "pooled".
LABEL = 13


def row_groups(markets: dict[str, str]) -> list[tuple[str, list[str]]]:
    """The rows of a table, as (label, tickers): each ticker with its calendar; each market of
    several tickers pooled, when the universe spans several markets; then all pooled."""
    groups = [(f"{ticker} {calendar}", [ticker]) for ticker, calendar in sorted(markets.items())]
    by_market: dict[str, list[str]] = {}
    for ticker, calendar in markets.items():
        by_market.setdefault(calendar, []).append(ticker)
    if len(by_market) > 1:
        groups += [(calendar, tickers) for calendar, tickers in by_market.items() if len(tickers) > 1]
    return [*groups, ("pooled", list(markets))]


def interval_table(frames: dict[str, pl.DataFrame], groups: list[tuple[str, list[str]]]) -> list[str]:
    """frames: the model's intervals ('model'), the naive rule's and the fixed-60 rule's, same rows."""
    model = frames["model"]
    has = model["lower_80"].is_not_null() & frames["fixed"]["lower_80"].is_not_null()  # rows all rules bound
    lines = [
        f"{'ticker':<{LABEL}} {'n':>5} {'cov80':>6} {'cov95':>6} {'width80%':>8} {'width95%':>8} {'wink80%':>8} {'wink95%':>8} "
        f"{'w/naive80':>9} {'w/naive95':>9} {'wk/fix80':>8} {'wk/fix95':>8}  flags"
    ]
    for label, tickers in groups:
        rows = model["ticker"].is_in(tickers).to_numpy()
        pooled = len(tickers) > 1
        if not rows.any():
            continue
        cells, flags = [], []
        scored = {
            level: {
                k: _interval_scores(f.filter(pl.Series(rows) & model["lower_80"].is_not_null()), level)
                for k, f in frames.items()
            }
            for level in (80, 95)
        }
        common = {
            level: {k: _interval_scores(f.filter(pl.Series(rows) & has), level) for k, f in frames.items()}
            for level in (80, 95)
        }
        n = scored[80]["model"].height
        for level in (80, 95):
            coverage = 100.0 * _mean(scored[level]["model"]["covered"])
            cells.append(f"{coverage:>6.1f}")
            tolerance = 1.5 if pooled else 4.0
            if abs(coverage - level) > tolerance:
                flags.append(f"cov{level} off by {coverage - level:+.1f} (> {tolerance})")
        cells += [f"{_mean(scored[level]['model']['width']):>8.3f}" for level in (80, 95)]
        cells += [f"{_mean(scored[level]['model']['winkler']):>8.3f}" for level in (80, 95)]
        for level in (80, 95):
            ratio = _mean(common[level]["model"]["width"]) / _mean(common[level]["naive"]["width"])
            cells.append(f"{ratio:>9.4f}")
            if pooled and ratio > 1.0:
                flags.append(f"wider than the naive rule at {level}")
        for level in (80, 95):
            ratio = _mean(common[level]["model"]["winkler"]) / _mean(common[level]["fixed"]["winkler"])
            cells.append(f"{ratio:>8.4f}")
            if pooled and ratio >= 1.0:
                flags.append(f"Winkler not better than fixed {FIXED_WINDOW} at {level}")
        lines.append(f"{label:<{LABEL}} {n:>5} " + " ".join(cells) + ("  " + "; ".join(flags) if flags else ""))
    methods = model["interval_method"].value_counts().sort("interval_method")
    lines.append("methods: " + ", ".join(f"{m}: {c}" for m, c in methods.iter_rows()))
    return lines


# --------------------------------------------------------------------------- peers


def _ets_available() -> bool:
    try:
        import statsforecast  # noqa: F401
    except ImportError:
        return False
    return True


def peer_forecasts(prices: pl.DataFrame, rows: pl.DataFrame, *, ets: bool) -> pl.DataFrame:
    """(ticker, as_of) of `rows` with each peer's predicted close, from the closes through as_of."""
    out, ets_windows = [], []
    for (ticker,), part in prices.sort("ticker", "session_date").group_by("ticker", maintain_order=True):
        dates = part["session_date"].to_numpy()
        closes = part["close"].to_numpy()
        returns = np.diff(np.log(closes))  # returns[i - 1]: close i over close i - 1
        for as_of in rows.filter(pl.col("ticker") == ticker)["as_of"].to_list():
            i = int(np.searchsorted(dates, np.datetime64(as_of)))
            assert dates[i] == np.datetime64(as_of), f"{ticker}: no close on {as_of}"
            recent = returns[max(0, i - PEER_WINDOW) : i]  # the last 252 returns through as_of
            x, y = recent[:-1], recent[1:]
            slope = float(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2))
            ar1 = y.mean() + slope * (recent[-1] - x.mean())
            out.append(
                {
                    "ticker": ticker,
                    "as_of": as_of,
                    "drift": closes[i] * math.exp(recent.mean()),
                    "ar1": closes[i] * math.exp(ar1),
                }
            )
            if ets:
                ets_windows.append(closes[max(0, i + 1 - PEER_WINDOW) : i + 1])
    frame = pl.DataFrame(out)
    if ets:
        frame = frame.with_columns(ets=pl.Series(_ets_forecasts(ets_windows)))
    return frame


def _ets_forecasts(windows: list[np.ndarray]) -> np.ndarray:
    """AutoETS's next value for each window of closes, fitted separately (one series each), on 2 processes."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    long = pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(len(windows)), [len(w) for w in windows]),
            "ds": np.concatenate([np.arange(len(w)) for w in windows]),
            "y": np.concatenate(windows),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forecast = StatsForecast(models=[AutoETS(season_length=1)], freq=1, n_jobs=2).forecast(df=long, h=1)
    return forecast.sort_values("unique_id")["AutoETS"].to_numpy()


# --------------------------------------------------------------------------- point scores


def _dm(differential: np.ndarray) -> float:
    """Diebold-Mariano t statistic of a loss differential series (one-step forecasts: no lags)."""
    sd = float(np.std(differential, ddof=1))
    return float(np.mean(differential) / (sd / math.sqrt(len(differential)))) if sd > 0 else float("nan")


def point_scores(frame: pl.DataFrame, column: str) -> dict[str, float]:
    """MAE / naive, RMSE / naive, DM against naive, direction hits and mean |move| of one forecast column."""
    last, actual = frame["last_close"].to_numpy(), frame["actual_close"].to_numpy()
    predicted = frame[column].to_numpy()
    error = 100.0 * (predicted - actual) / last
    naive = 100.0 * (last - actual) / last
    differential = (
        frame.with_columns(d=pl.Series(np.abs(error) - np.abs(naive)))
        .group_by("as_of")
        .agg(pl.col("d").mean())["d"]
        .to_numpy()
    )
    moved, went = np.sign(predicted - last), np.sign(actual - last)
    return {
        "n": float(frame.height),
        "mae": float(np.mean(np.abs(error)) / np.mean(np.abs(naive))),
        "rmse": float(np.sqrt(np.mean(error**2)) / np.sqrt(np.mean(naive**2))),
        "dm": _dm(differential),
        "dir": float(np.mean(moved == went)),
        "move": float(np.mean(np.abs(predicted / last - 1.0)) * 1e4),
    }


def point_table(frame: pl.DataFrame, columns: list[str], groups: list[tuple[str, list[str]]]) -> list[str]:
    lines = [
        f"{'ticker':<{LABEL}} " + " ".join(f"{c:>21}" for c in columns),
        f"{'':<{LABEL}} " + " ".join(f"{'MAE/n RMSE/n DM':>21}" for _ in columns),
    ]
    for label, tickers in groups:
        part = frame.filter(pl.col("ticker").is_in(tickers))
        cells = []
        for column in columns:
            rows = part.filter(pl.col(column).is_not_null())
            s = point_scores(rows, column)
            cells.append(f"{s['mae']:>7.4f} {s['rmse']:>6.4f} {s['dm']:>6.2f}")
        lines.append(f"{label:<{LABEL}} " + " ".join(f"{c:>21}" for c in cells))
    moves = [point_scores(frame.filter(pl.col(c).is_not_null()), c) for c in columns]
    lines.append(f"{'dir hit':<{LABEL}} " + " ".join(f"{m['dir']:>21.3f}" for m in moves))
    lines.append(f"{'|move|bp':<{LABEL}} " + " ".join(f"{m['move']:>21.1f}" for m in moves))
    return lines


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--span", choices=["held-out", "tuning"], default="held-out")
    labels = [u.label for u in UNIVERSES]
    parser.add_argument(
        "--universes", default=",".join(labels), help=f"comma-separated, of {', '.join(labels)} (default: all)"
    )
    parser.add_argument("--etf-file", type=Path, default=UNIVERSES[0].default_file)
    parser.add_argument("--stock-file", type=Path, default=UNIVERSES[1].default_file)
    parser.add_argument("--presets", default="default,seed", help="comma-separated presets (default: default,seed)")
    parser.add_argument(
        "--seed-sessions",
        type=int,
        default=0,
        help="evaluate the seed preset on only the first N sessions of each span (0: the whole span)",
    )
    parser.add_argument("--no-ets", action="store_true", help="skip the AutoETS peer (the slowest part)")
    parser.add_argument(
        "--save", type=Path, help="also write each file's rows with every forecast and interval as parquet here"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ets = not args.no_ets and _ets_available()
    files = {u.label: u.default_file for u in UNIVERSES} | {"ETFs": args.etf_file, "US stocks": args.stock_file}
    chosen = [label.strip() for label in args.universes.split(",")]
    if unknown := [label for label in chosen if label not in labels]:
        parser.error(f"--universes: unknown {', '.join(unknown)}; expected some of {', '.join(labels)}")
    total_started = time.perf_counter()
    print("command: python " + " ".join(sys.argv))
    if not args.no_ets and not ets:
        print(f"AutoETS skipped: statsforecast is not installed ({INSTALL_BENCH} installs the benchmark extra)")
    names = args.presets.split(",")
    for universe in [u for u in UNIVERSES if u.label in chosen]:
        span = universe.held_out if args.span == "held-out" else universe.tuning
        print(f"\n## {universe.label}: {files[universe.label]}")
        markets = universe.markets()
        print("markets: " + ", ".join(f"{ticker} {calendar}" for ticker, calendar in markets.items()))
        tuning = f"{universe.tuning.start} to {universe.tuning.end}" if universe.tuning else "none (never tuned on)"
        print(
            f"tuning span (as_of): {tuning}; "
            f"held-out span (as_of): {universe.held_out.start} to {universe.held_out.end}; this run: {args.span}"
        )
        if span is None:
            print("skipped: no tuning span")
            continue
        market = universe.calendar()
        prices = (
            read_price_file(files[universe.label])
            .filter(
                pl.col("ticker").is_in(list(universe.tickers))
                & pl.col("session_date").is_between(
                    market.sessions_back(span.start, 2 * PEER_WINDOW), market.next_session(span.end)
                )
            )
            .select("ticker", "session_date", "close")
        )
        results: dict[str, pl.DataFrame] = {}
        for name in names:
            preset = PRESETS[name]
            run_span = span
            if name == "seed" and args.seed_sessions:
                sessions = market.sessions_between(span.start, span.end)[: args.seed_sessions]
                run_span = Span(sessions[0], sessions[-1])
            frame, elapsed = run_backfill(files[universe.label], universe.tickers, preset, run_span)
            print(
                f"{name}: backfill {run_span.start} to {run_span.end}, {frame.height} scored forecasts, {elapsed:.1f} s"
            )
            results[name] = frame.sort("ticker", "as_of")  # with the intervals the cycle stored
        groups = row_groups(markets)
        base = results[names[0]]
        started = time.perf_counter()
        rows = base.select("ticker", "as_of", "last_close", "actual_close").join(
            peer_forecasts(prices, base, ets=ets), on=["ticker", "as_of"]
        )
        for name, frame in results.items():
            rows = rows.join(
                frame.select("ticker", "as_of", pl.col("predicted_close").alias(name)),
                on=["ticker", "as_of"],
                how="left",
            )
        print(f"peers: {time.perf_counter() - started:.1f} s")
        columns = [*names, "drift", "ar1", *(["ets"] if ets else [])]
        print("\nPoint forecasts on the same rows: MAE / naive MAE, RMSE / naive RMSE, Diebold-Mariano t against naive")
        if args.seed_sessions and "seed" in names:
            print(
                f"(seed: only the first {args.seed_sessions} sessions; its pooled and per-ticker figures cover those rows only)"
            )
        print("\n".join(point_table(rows, columns, groups)))
        for name in names:
            preset = PRESETS[name]
            model = results[name]
            frames = {
                "model": model,
                "naive": naive_rule_frame(model, prices, preset),
                "fixed": fixed_window_frame(model),
            }
            print(
                f"\nIntervals, {name}: coverage (%), mean width and Winkler score (% of the last close); "
                f"width against the same rule on naive's errors, Winkler against a fixed {FIXED_WINDOW}-error window "
                "(both on the rows every rule bounds)"
            )
            print("\n".join(interval_table(frames, groups)))
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                model.join(
                    rows.drop("last_close", "actual_close", *names), on=["ticker", "as_of"], how="left"
                ).write_parquet(args.save / f"{name}_{args.span}_{universe.label.replace(' ', '_')}.parquet")
    print(f"\nwall time: {time.perf_counter() - total_started:.1f} s")


if __name__ == "__main__":
    main()
