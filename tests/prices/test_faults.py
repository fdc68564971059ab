"""Bad data from Yahoo: every fault is repaired by a documented rule or rejects that ticker with a reason.

Each case runs one real cycle (run_cycle, on SQLite and PostgreSQL) over YahooSource with
`download` replaced by a fake that returns a frame assembled exactly as yfinance 1.x assembles
it (tests/support/yfinance_frames.py). Two tickers are asked for: GOOD, whose prices are clean, and
ODD, whose prices carry the fault. The rules live in forecaster/prices/checks.py (its docstring
lists them) and forecaster/prices/sources/yahoo.py; nothing is ever stored silently: either ODD's rows
are stored as the rule says, or none of its rows is and `run_failures` says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest
import sqlalchemy as sa

from forecaster.calendar import NYSE, trading_calendar
from forecaster.context import CycleContext
from forecaster.cycle import run_cycle
from forecaster.model.presets import PRESETS
from forecaster.price_frame import conform
from forecaster.prices.checks import Checked, check_fetched_prices
from forecaster.prices.sources.failures import NO_ROWS, NOT_RETURNED
from forecaster.prices.sources.yahoo import YahooSource
from tests.support.yfinance_frames import download_frame, history

NYSE_CALENDAR = trading_calendar(NYSE)

AS_OF = date(2024, 3, 15)
SESSIONS = NYSE_CALENDAR.sessions_between(NYSE_CALENDAR.sessions_back(AS_OF, 30), AS_OF)  # the 30 sessions fetched
CLOSES = [100.0 + 0.5 * k + (k % 3) for k in range(len(SESSIONS))]  # calm, distinct closes


def _closes(overrides: dict[int, float] | None = None, drop: tuple[int, ...] = ()) -> dict[str, float]:
    """ODD's closes by ISO date: CLOSES with some replaced (by position) and some days left out."""
    values = dict(enumerate(CLOSES)) | (overrides or {})
    return {SESSIONS[k].isoformat(): values[k] for k in range(len(SESSIONS)) if k not in drop}


def _with_odd(odd: pd.DataFrame | None) -> pd.DataFrame:
    return download_frame({"GOOD": history(_closes()), "ODD": odd})


def _split_from(k: int) -> dict[int, float]:
    """Closes that halve from session k on, as if a 2:1 split were left unadjusted."""
    return {j: CLOSES[j] / 2 for j in range(k, len(SESSIONS))}


LIVE_CLOSE = CLOSES[10] + 0.25


def _a_day_twice() -> pd.DataFrame:
    """Session 10 twice: its row at midnight, then a live row at 15:30 with another close."""
    final = history(_closes())
    live = history({f"{SESSIONS[10].isoformat()} 15:30": LIVE_CLOSE})
    return _with_odd(pd.concat([final, live]).sort_index())


def _shuffled() -> pd.DataFrame:
    frame = _with_odd(history(_closes()))
    return frame.iloc[np.random.default_rng(0).permutation(len(frame))]


def _session_missing_for_everyone() -> pd.DataFrame:
    frame = _with_odd(history(_closes()))
    return frame.drop(index=pd.Timestamp(SESSIONS[12]))


@dataclass(frozen=True)
class Fault:
    name: str
    frame: Callable[[], pd.DataFrame]
    stored: list[tuple[date, float]] | None  # ODD's stored (session_date, close); None: nothing
    failure: tuple[str, str] | None  # ODD's (stage, part of the reason) in run_failures; None: no failure


def _stored(overrides: dict[int, float] | None = None, drop: tuple[int, ...] = ()) -> list[tuple[date, float]]:
    return [(date.fromisoformat(d), c) for d, c in _closes(overrides, drop).items()]


FAULTS = [
    Fault(
        "NaN rows inside the range are dropped, the rest is stored",
        lambda: _with_odd(history(_closes({5: np.nan, 6: np.nan, 20: np.nan}))),
        _stored(drop=(5, 6, 20)),
        None,
    ),
    Fault(
        "a NaN close on the session forecast from leaves nothing to forecast from",
        lambda: _with_odd(history(_closes({len(SESSIONS) - 1: np.nan}))),
        _stored(drop=(len(SESSIONS) - 1,)),
        ("prices", f"no close for {AS_OF} yet"),
    ),
    Fault(
        "a day returned twice (final and live row) keeps the row returned later",
        _a_day_twice,
        _stored({10: LIVE_CLOSE}),
        None,
    ),
    Fault("dates out of order are sorted", _shuffled, _stored(), None),
    Fault(
        "a session missing from the download is not invented; the others are stored",
        _session_missing_for_everyone,
        _stored(drop=(12,)),
        None,
    ),
    Fault(
        "a close that halves overnight and stays there is a move a second look confirms: kept",
        lambda: _with_odd(history(_closes(_split_from(15)))),
        _stored(_split_from(15)),
        None,
    ),
    Fault(
        "a close that doubles for a day, shown the same on a second look, is kept too",
        lambda: _with_odd(history(_closes({15: CLOSES[15] * 2}))),
        _stored({15: CLOSES[15] * 2}),
        None,
    ),
    Fault(
        "a zero close rejects the ticker",
        lambda: _with_odd(history(_closes({8: 0.0}))),
        None,
        ("prices", "not a positive price"),
    ),
    Fault(
        "a negative close rejects the ticker",
        lambda: _with_odd(history(_closes({8: -3.0}))),
        None,
        ("prices", "not a positive price"),
    ),
    Fault(
        "an infinite close rejects the ticker",
        lambda: _with_odd(history(_closes({8: np.inf}))),
        None,
        ("prices", "not a positive price"),
    ),
    Fault("a ticker that vanished (all NaN) fails at the fetch", lambda: _with_odd(None), None, ("fetch", NO_ROWS)),
    Fault(
        "a ticker left out of the download fails at the fetch",
        lambda: download_frame({"GOOD": history(_closes())}),
        None,
        ("fetch", NOT_RETURNED),
    ),
]


@pytest.fixture
def engine(migrated_engine) -> sa.Engine:
    return migrated_engine


def _cycle(engine: sa.Engine, frame: pd.DataFrame, as_of: date = AS_OF):
    context = CycleContext(
        engine=engine,
        source=YahooSource(download=lambda **_: frame),
        tickers=("GOOD", "ODD"),
        preset=PRESETS["default"],
        history_sessions=len(SESSIONS),
    )
    return run_cycle(context, as_of)


def _stored_closes(engine: sa.Engine, ticker: str) -> list[tuple[date, float]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT session_date, close FROM prices WHERE ticker = :t ORDER BY session_date"), {"t": ticker}
        ).all()
    return [(d if isinstance(d, date) else date.fromisoformat(d), c) for d, c in rows]


def _failures(engine: sa.Engine, run_id: int) -> dict[str, tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT ticker, stage, reason FROM run_failures WHERE run_id = :r"), {"r": run_id}
        ).all()
    return {ticker: (stage, reason) for ticker, stage, reason in rows}


def _forecast_tickers(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT ticker FROM predictions ORDER BY ticker")).scalars().all()


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_a_fault_in_one_tickers_download_is_repaired_or_rejected_with_a_reason(engine, fault):
    outcome = _cycle(engine, fault.frame())

    # The clean ticker is never affected: all its closes stored, its forecast made
    # (the one-session gap, when the whole download lacks a session, is the only thing it shares).
    shared_gap = (12,) if "missing from the download" in fault.name else ()
    assert _stored_closes(engine, "GOOD") == _stored(drop=shared_gap)
    failures = _failures(engine, outcome.run_id)
    assert "GOOD" not in failures
    if fault.stored is None:
        assert _stored_closes(engine, "ODD") == [], "a rejected ticker stores nothing from the fetch"
    else:
        assert _stored_closes(engine, "ODD") == fault.stored
    if fault.failure is None:
        assert "ODD" not in failures
        assert (outcome.status, _forecast_tickers(engine)) == ("ok", ["GOOD", "ODD"])
    else:
        stage, reason = failures["ODD"]
        assert stage == fault.failure[0] and fault.failure[1] in reason, failures["ODD"]
        assert (outcome.status, _forecast_tickers(engine)) == ("partial", ["GOOD"])


def test_a_rejected_ticker_is_fetched_again_and_stored_once_its_data_is_clean(engine):
    _cycle(engine, _with_odd(history(_closes({8: 0.0}))))

    again = _cycle(engine, _with_odd(history(_closes())))

    assert (again.status, again.tickers_ok, again.tickers_skipped) == ("ok", 1, 1)
    assert _stored_closes(engine, "ODD") == _stored()


def test_a_split_the_source_has_adjusted_its_history_for_replaces_the_stored_history(engine):
    _cycle(engine, _with_odd(history(_closes())))
    next_day = NYSE_CALENDAR.next_session(AS_OF)
    adjusted = {d: c / 2 for d, c in {**_closes(), next_day.isoformat(): CLOSES[-1] + 0.5}.items()}
    clean_next = {**_closes(), next_day.isoformat(): CLOSES[-1] + 0.5}

    outcome = _cycle(engine, download_frame({"GOOD": history(clean_next), "ODD": history(adjusted)}), next_day)

    assert "ODD" not in _failures(engine, outcome.run_id)
    assert _stored_closes(engine, "ODD") == [(date.fromisoformat(d), c) for d, c in adjusted.items()]


def _events(engine: sa.Engine, ticker: str) -> list[tuple[date, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT session_date, kind FROM price_events WHERE ticker = :t ORDER BY session_date, kind"),
            {"t": ticker},
        ).all()
    return [(d if isinstance(d, date) else date.fromisoformat(d), kind) for d, kind in rows]


def test_a_halving_against_the_stored_history_that_a_second_look_confirms_is_kept_and_flagged(engine):
    _cycle(engine, _with_odd(history(_closes())))
    next_day = NYSE_CALENDAR.next_session(AS_OF)
    after_split = {**_closes(), next_day.isoformat(): CLOSES[-1] / 2}
    clean_next = {**_closes(), next_day.isoformat(): CLOSES[-1] + 0.5}

    outcome = _cycle(engine, download_frame({"GOOD": history(clean_next), "ODD": history(after_split)}), next_day)

    assert "ODD" not in _failures(engine, outcome.run_id), "no ticker stalls on one price"
    assert _stored_closes(engine, "ODD")[-1] == (next_day, CLOSES[-1] / 2)
    assert (next_day, "jump") in _events(engine, "ODD")


def test_a_jump_the_second_look_does_not_repeat_is_not_stored_and_asked_for_again(engine):
    _cycle(engine, _with_odd(history(_closes())))
    next_day = NYSE_CALENDAR.next_session(AS_OF)
    looks = iter([CLOSES[-1] / 2, CLOSES[-1] + 0.5])  # a bad tick, then the right close
    clean_next = {**_closes(), next_day.isoformat(): CLOSES[-1] + 0.5}

    def download(**_):
        odd = {**_closes(), next_day.isoformat(): next(looks)}
        return download_frame({"GOOD": history(clean_next), "ODD": history(odd)})

    context = CycleContext(
        engine=engine, source=YahooSource(download=download), tickers=("GOOD", "ODD"), preset=PRESETS["default"]
    )
    outcome = run_cycle(context, next_day)

    stage, reason = _failures(engine, outcome.run_id)["ODD"]
    assert stage == "prices" and "second look" in reason, reason
    assert _stored_closes(engine, "ODD")[-1][0] == AS_OF


# --- the rules one by one, on the frame the sources return -----------------------------------


def _frame(rows: list[tuple[str, date, float]]) -> pl.DataFrame:
    return conform(pl.DataFrame(rows, schema=["ticker", "session_date", "close"], orient="row"))


def _check(rows: list[tuple[str, date, float]], **kwargs) -> Checked:
    return check_fetched_prices(_frame(rows), calendar=NYSE_CALENDAR, jump_threshold=0.40, **kwargs)


def test_a_jump_from_the_last_stored_close_is_a_move_to_confirm():
    day1, day2 = SESSIONS[-2], SESSIONS[-1]
    checked = _check(
        [("ODD", day2, 50.0), ("GOOD", day2, 101.0)], last_stored={"ODD": (day1, 100.0), "GOOD": (day1, 100.0)}
    )
    assert checked.rejected == {} and checked.rows["ticker"].to_list() == ["GOOD", "ODD"]
    assert checked.jumps.rows() == [("ODD", day2, 50.0, day1, 100.0)]


@pytest.mark.parametrize("move, flagged", [(0.39, False), (-0.39, False), (0.41, True), (-0.41, True)])
def test_the_jump_threshold_is_forty_percent_either_way(move, flagged):
    checked = _check([("T", SESSIONS[0], 100.0), ("T", SESSIONS[1], 100.0 * (1 + move))])
    assert (checked.jumps.height == 1) is flagged


def test_two_different_closes_for_one_date_reject_the_ticker_and_the_same_close_twice_is_kept_once():
    checked = _check(
        [("A", SESSIONS[0], 10.0), ("A", SESSIONS[0], 10.5), ("B", SESSIONS[0], 10.0), ("B", SESSIONS[0], 10.0)]
    )
    assert checked.rejected == {"A": f"two different closes for {SESSIONS[0]}"}
    assert checked.rows.select("ticker", "session_date", "close").rows() == [("B", SESSIONS[0], 10.0)]


def test_a_close_on_a_day_the_calendar_has_no_session_is_kept_and_flagged_unless_it_is_a_stale_carry():
    good_friday, saturday = date(2024, 3, 29), date(2024, 3, 30)  # NYSE closed on both
    rows = conform(
        pl.DataFrame(
            {
                "ticker": ["A"] * 3 + ["B"] * 2,
                "session_date": [date(2024, 3, 28), good_friday, date(2024, 4, 1), date(2024, 3, 28), saturday],
                "close": [10.0, 10.2, 10.1, 5.0, 5.0],
                "volume": [100.0, 50.0, 80.0, 100.0, 0.0],
            }
        )
    )
    checked = check_fetched_prices(rows, calendar=NYSE_CALENDAR, jump_threshold=0.4)
    assert checked.rows.select("ticker", "session_date").rows() == [
        ("A", date(2024, 3, 28)),
        ("A", good_friday),
        ("A", date(2024, 4, 1)),
        ("B", date(2024, 3, 28)),
    ]
    assert [(e.ticker, e.session_date, e.kind) for e in checked.events] == [
        ("A", good_friday, "off_calendar"),
        ("B", saturday, "stale"),
    ]
