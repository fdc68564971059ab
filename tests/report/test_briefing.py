"""The briefing: headline numbers against their targets, flags at the rate chance predicts, what changed since the
previous session, and the alerts; read from a migrated database on SQLite and on PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.report import briefing
from forecaster.report.data import load_report
from forecaster.report.writer import write_briefed_reports
from forecaster.store.schema import predictions, prices
from tests.support.report_tables import PRESET, Tables, at, day

#: Sessions 0..SESSIONS: a forecast after each, the last one not realised yet.
SESSIONS = 61


@pytest.fixture
def tables(migrated_engine) -> Tables:
    return Tables(migrated_engine)


def write_tickers(tables: Tables, coverage: dict[str, tuple[float, float]], seed: int = 20261208) -> None:
    """Closes of 100 on every session for each ticker, and after each session a forecast of 100 whose close falls
    inside its 80 % and 95 % intervals at that ticker's (rate_80, rate_95), drawn at random."""
    generator = np.random.default_rng(seed)
    run = tables.run(SESSIONS, kind="backfill")
    price_rows, forecast_rows = [], []
    for ticker, (rate_80, rate_95) in coverage.items():
        uniform = generator.random(SESSIONS + 1)
        for n in range(SESSIONS + 1):
            price_rows.append(
                {"ticker": ticker, "session_date": day(n), "close": 100.0, "source": "test", "fetched_at": at(n)}
            )
            forecast_rows.append(
                {
                    "ticker": ticker,
                    "preset": PRESET,
                    "as_of": day(n),
                    "target_session": day(n + 1),
                    "predicted_close": 100.0,
                    "last_close": 100.0,
                    "created_at": at(n, 5),
                    "run_id": run,
                    "lower_80": 99.0 if uniform[n] < rate_80 else 100.5,
                    "upper_80": 101.0,
                    "lower_95": 98.0 if uniform[n] < rate_95 else 100.5,
                    "upper_95": 102.0,
                    "interval_method": "test",
                }
            )
    with tables.engine.begin() as connection:
        connection.execute(prices.insert(), price_rows)
        connection.execute(predictions.insert(), forecast_rows)


def headline(data, measure: str) -> briefing.Headline:
    (found,) = [h for h in briefing.headlines(data) if h.measure.startswith(measure)]
    return found


def test_on_500_calibrated_tickers_the_flags_number_what_chance_predicts_and_a_miscalibrated_one_is_flagged(tables):
    calibrated = {f"T{i:03d}": (0.80, 0.95) for i in range(500)}
    write_tickers(tables, {**calibrated, "PLANTED": (0.55, 0.80)})

    data = load_report(tables.engine, as_of=day(SESSIONS), preset=PRESET)

    flags = headline(data, "Tickers flagged coverage off")
    chance = float(flags.target.removeprefix("chance alone: "))
    assert 1.0 < chance < 5.0  # 501 tickers at 1 %, the two levels at 0.5 % each, less the test's discreteness
    assert int(flags.now) <= chance + 3 * chance**0.5 + 1  # PLANTED and what chance gives
    assert flags.verdict == "within chance"
    flagged = set(data.tickers.filter("coverage_off_60")["ticker"])
    assert "PLANTED" in flagged
    assert headline(data, "Coverage of the 80 %").verdict == "on target"
    assert headline(data, "Coverage of the 95 %").verdict == "on target"


def test_pooled_coverage_off_beyond_chance_is_a_headline_problem_and_an_alert(tables, tmp_path):
    write_tickers(tables, {f"T{i:02d}": (0.66, 0.90) for i in range(40)})

    written = write_briefed_reports(tables.engine, as_of=day(SESSIONS), preset=PRESET, formats=["md"], out_dir=tmp_path)

    data = load_report(tables.engine, as_of=day(SESSIONS), preset=PRESET)
    coverage_80 = headline(data, "Coverage of the 80 %")
    assert (coverage_80.target, coverage_80.verdict) == ("80 %", briefing.TOO_LOW)
    assert coverage_80.p_value is not None and coverage_80.p_value < 0.01
    assert any(
        line.startswith("Coverage of the 80 % interval, last 20: ") and "TOO LOW" in line for line in written.alerts
    )
    assert "## Briefing" in written.briefing and "TOO LOW" in written.briefing
    assert "![" not in written.briefing  # no images: it is a notification's body


def test_what_changed_names_new_and_cleared_failures_and_the_biggest_miss(tables):
    write_tickers(tables, {"AAA": (0.8, 0.95), "BBB": (0.8, 0.95)})
    yesterday, today = tables.run(SESSIONS - 1), tables.run(SESSIONS, status="partial", failed=1)
    tables.failure(yesterday, "CCC", "fetch", "no data returned for CCC")  # forecast today: cleared
    tables.forecast("CCC", SESSIONS, 50.0, 50.0, today)
    tables.failure(today, "DDD", "train", "diverged")  # new
    with tables.engine.begin() as connection:  # BBB closed at 90 on the session just realised: a 10 % miss
        connection.execute(
            prices.update().where(prices.c.ticker == "BBB", prices.c.session_date == day(SESSIONS)).values(close=90.0)
        )

    data = load_report(tables.engine, as_of=day(SESSIONS), preset=PRESET)
    changed = {c.what: c for c in briefing.changes(data)}

    assert changed["New failures"].details == "DDD (train)"
    assert changed["Failures cleared (forecast again)"].details == "CCC"
    miss = changed["Biggest misses of the session just closed"].details
    assert miss.startswith("BBB forecast 100.00, closed 90.00 (11.1% off; naive 11.1%)")
    assert headline(data, "Tickers forecast").change == "+1"  # CCC
    assert headline(data, "Tickers failed").verdict == briefing.FAILURES


def test_the_first_session_has_nothing_to_compare_with(tables):
    run = tables.run(0)
    tables.closes("AAA", {0: 100.0})
    tables.forecast("AAA", 0, 101.0, 100.0, run)

    data = load_report(tables.engine, as_of=day(0), preset=PRESET)

    assert data.previous is None
    assert headline(data, "Tickers forecast").change == "n/a"
    assert headline(data, "Pooled skill").verdict == "nothing to measure"
    assert [c.what for c in briefing.changes(data)] == ["Biggest forecast moves"]
