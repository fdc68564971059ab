"""ReplaySource (tests/support/yahoo_replay.py): a ticker's life as Yahoo Finance shows it at the clock's instant."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from forecaster.calendar import NYSE, trading_calendar
from forecaster.price_frame import SOURCE_SCHEMA
from forecaster.prices.sources.base import FetchResult
from tests.support.yahoo_replay import RATE_LIMITED, ReplaySource, TickerLife, daemon_runs

SPAN = (date(2024, 1, 1), date(2024, 12, 31))
NYSE_CALENDAR = trading_calendar(NYSE)

EX_DATE = date(2024, 3, 15)  # a Friday
SPLIT_DATE = date(2024, 6, 10)  # a Monday
JUMP_DATE = date(2024, 8, 1)
GAP = date(2024, 9, 4)  # a Wednesday, missing until Friday's close


def after_close(session: date, calendar: str = NYSE) -> datetime:
    """The moment a daemon without settle runs for `session`."""
    return trading_calendar(calendar).session_close(session)


def previous_session(session: date) -> date:
    return NYSE_CALENDAR.sessions_back(session, 2)


def fetch_at(
    lives: TickerLife | list[TickerLife],
    now: datetime,
    tickers: list[str] | None = None,
    start: date = SPAN[0],
    end: date = SPAN[1],
    settle: timedelta = timedelta(0),
) -> FetchResult:
    lives = lives if isinstance(lives, list) else [lives]
    source = ReplaySource(lives, clock=lambda: now, settle=settle)
    return source.fetch(tickers or [life.ticker for life in lives], start, end)


def answers_at_each_run(life: TickerLife, through: date = SPAN[1]) -> dict[date, pl.DataFrame]:
    """What one source answers for the whole span at the daemon's run of each session up to `through`."""
    runs = [run for run in daemon_runs(life) if run.session <= through]
    now = [runs[0].at]
    source = ReplaySource([life], clock=lambda: now[0])
    answers = {}
    for run in runs:
        now[0] = run.at
        answers[run.session] = source.fetch([life.ticker], *SPAN).prices
    return answers


def closes(frame: pl.DataFrame, before: date | None = None) -> np.ndarray:
    """The frame's closes, those of sessions before `before` only if given."""
    if before is not None:
        frame = frame.filter(pl.col("session_date") < before)
    return frame["close"].to_numpy()


def row(frame: pl.DataFrame, session: date) -> dict:
    return frame.filter(pl.col("session_date") == session).row(0, named=True)


# What an answer holds


def test_an_answer_is_in_the_source_schema_sorted_with_adj_close_the_close():
    result = fetch_at([TickerLife("BBB"), TickerLife("AAA", seed=1)], after_close(date(2024, 2, 1)))
    assert result.failures == {}
    assert result.prices.schema == pl.Schema(SOURCE_SCHEMA)
    assert result.prices.equals(result.prices.sort("ticker", "session_date"))
    assert result.prices["close"].equals(result.prices["adj_close"], check_names=False)


def test_an_answer_holds_the_sessions_closed_by_now_in_the_range_asked():
    prices = fetch_at(TickerLife("AAA"), after_close(date(2024, 2, 1)), start=date(2024, 1, 10)).prices
    assert prices["session_date"].to_list() == NYSE_CALENDAR.sessions_between(date(2024, 1, 10), date(2024, 2, 1))


def test_a_ticker_without_a_life_fails_as_yahoo_fails_an_unknown_one():
    result = fetch_at(TickerLife("AAA"), after_close(date(2024, 2, 1)), tickers=["AAA", "NOPE"])
    assert result.failures == {"NOPE": "no rows (unknown or delisted ticker?)"}
    assert set(result.prices["ticker"]) == {"AAA"}


def test_a_range_with_no_row_yet_fails_the_ticker():
    before_the_life = fetch_at(TickerLife("AAA", start=date(2024, 6, 1)), after_close(date(2024, 3, 1)))
    assert before_the_life.failures == {"AAA": "no rows (unknown or delisted ticker?)"}


# The session in progress


def test_a_fetch_before_the_close_returns_a_live_bar_that_differs_from_the_final_close():
    life, today = TickerLife("AAA"), date(2024, 2, 1)
    midday = datetime(2024, 2, 1, 17, 0, tzinfo=UTC)  # 12:00 in New York
    live = fetch_at(life, midday).prices
    final = fetch_at(life, after_close(today)).prices
    assert live["session_date"][-1] == today
    assert row(live, today)["close"] != pytest.approx(row(final, today)["close"], rel=1e-3)
    assert row(live, today)["open"] == row(final, today)["open"]
    assert live.filter(pl.col("session_date") < today).equals(final.filter(pl.col("session_date") < today))


def test_a_live_bar_is_left_out_when_the_range_ends_before_today():
    prices = fetch_at(TickerLife("AAA"), datetime(2024, 2, 1, 17, 0, tzinfo=UTC), end=date(2024, 1, 31)).prices
    assert prices["session_date"][-1] == date(2024, 1, 31)


def test_before_the_exchanges_day_begins_there_is_no_bar_for_it():
    early = datetime(2024, 2, 1, 4, 0, tzinfo=UTC)  # 23:00 on January 31 in New York
    assert fetch_at(TickerLife("AAA"), early).prices["session_date"][-1] == date(2024, 1, 31)


def test_a_bar_stays_live_for_settle_after_the_close():
    life, today = TickerLife("AAA"), date(2024, 2, 1)
    settle = timedelta(minutes=10)
    at_close = fetch_at(life, after_close(today), settle=settle).prices
    settled = fetch_at(life, after_close(today) + settle, settle=settle).prices
    assert row(at_close, today)["close"] != pytest.approx(row(settled, today)["close"], rel=1e-3)
    assert row(settled, today) == row(fetch_at(life, after_close(today)).prices, today)


# Dividends and splits restate the history before them


def test_after_a_dividends_ex_date_earlier_closes_are_scaled_by_the_dividend_factor():
    life = TickerLife("AAA", dividends={EX_DATE: 1.5})
    before = fetch_at(life, after_close(previous_session(EX_DATE))).prices
    after = fetch_at(life, after_close(EX_DATE)).prices
    factor = 1 - 1.5 / closes(before)[-1]  # the raw close of the session before the ex-date
    np.testing.assert_allclose(closes(after, before=EX_DATE), closes(before) * factor, rtol=1e-12)
    np.testing.assert_allclose(
        np.diff(np.log(closes(after, before=EX_DATE))), np.diff(np.log(closes(before))), atol=1e-12
    )
    assert row(after, EX_DATE)["close"] == pytest.approx(life.raw_bars().pipe(row, EX_DATE)["close"], rel=1e-12)


def test_a_dividend_leaves_the_log_returns_on_either_side_of_its_ex_date_unchanged():
    life = TickerLife("AAA", dividends={EX_DATE: 1.5})
    raw = life.raw_bars()
    final = ReplaySource([life], clock=lambda: after_close(SPAN[1])).final_history()
    for side in (pl.col("session_date") < EX_DATE, pl.col("session_date") >= EX_DATE):
        np.testing.assert_allclose(
            np.diff(np.log(closes(final.filter(side)))), np.diff(np.log(closes(raw.filter(side)))), atol=1e-12
        )


def test_the_ohlc_before_an_ex_date_are_adjusted_alike_and_the_volume_is_not():
    life = TickerLife("AAA", dividends={EX_DATE: 1.5})
    before = fetch_at(life, after_close(previous_session(EX_DATE))).prices
    after = fetch_at(life, after_close(EX_DATE)).prices.filter(pl.col("session_date") < EX_DATE)
    factor = 1 - 1.5 / closes(before)[-1]
    for column in ("open", "high", "low", "close"):
        np.testing.assert_allclose(after[column].to_numpy(), before[column].to_numpy() * factor, rtol=1e-12)
    assert after["volume"].equals(before["volume"])


def test_a_dividend_is_reported_on_its_ex_date_only():
    prices = fetch_at(TickerLife("AAA", dividends={EX_DATE: 1.5}), after_close(date(2024, 4, 1))).prices
    assert prices.filter(pl.col("dividends") != 0)["session_date"].to_list() == [EX_DATE]
    assert row(prices, EX_DATE)["dividends"] == 1.5
    assert prices["stock_splits"].sum() == 0


def test_a_2_for_1_split_halves_every_earlier_price_and_doubles_its_volume():
    life = TickerLife("AAA", splits={SPLIT_DATE: 2.0})
    before = fetch_at(life, after_close(previous_session(SPLIT_DATE))).prices
    after = fetch_at(life, after_close(SPLIT_DATE)).prices
    earlier = after.filter(pl.col("session_date") < SPLIT_DATE)
    for column in ("open", "high", "low", "close"):
        np.testing.assert_allclose(earlier[column].to_numpy(), before[column].to_numpy() / 2, rtol=1e-12)
    np.testing.assert_allclose(earlier["volume"].to_numpy(), before["volume"].to_numpy() * 2, rtol=1e-12)
    assert row(after, SPLIT_DATE)["stock_splits"] == 2.0


def test_a_1_for_10_reverse_split_multiplies_earlier_closes_by_10():
    life = TickerLife("AAA", splits={SPLIT_DATE: 0.1})
    before = fetch_at(life, after_close(previous_session(SPLIT_DATE))).prices
    after = fetch_at(life, after_close(SPLIT_DATE)).prices
    np.testing.assert_allclose(closes(after, before=SPLIT_DATE), closes(before) * 10, rtol=1e-12)
    assert row(after, SPLIT_DATE)["stock_splits"] == 0.1


def test_a_split_leaves_no_step_in_the_adjusted_history_though_the_raw_close_halves():
    life = TickerLife("AAA", splits={SPLIT_DATE: 2.0})
    day_before = previous_session(SPLIT_DATE)
    raw = life.raw_bars()
    final = ReplaySource([life], clock=lambda: after_close(SPAN[1])).final_history()
    assert row(raw, SPLIT_DATE)["close"] / row(raw, day_before)["close"] < 0.6
    assert abs(np.log(row(final, SPLIT_DATE)["close"] / row(final, day_before)["close"])) < 5 * life.volatility


def test_a_dividend_is_reported_in_the_basis_of_the_splits_after_it():
    life = TickerLife("AAA", dividends={EX_DATE: 1.5}, splits={SPLIT_DATE: 2.0})
    before_split = fetch_at(life, after_close(previous_session(SPLIT_DATE))).prices
    after_split = fetch_at(life, after_close(SPLIT_DATE)).prices
    assert row(before_split, EX_DATE)["dividends"] == 1.5
    assert row(after_split, EX_DATE)["dividends"] == pytest.approx(0.75)


def test_a_history_is_restated_only_on_ex_dates():
    life = TickerLife("AAA", dividends={EX_DATE: 1.5}, splits={SPLIT_DATE: 2.0})
    answers = list(answers_at_each_run(life, through=date(2024, 7, 1)).items())
    restated = [
        session
        for (previous, was), (session, now) in zip(answers, answers[1:], strict=False)
        if not now.filter(pl.col("session_date") <= previous).equals(was)
    ]
    assert restated == [EX_DATE, SPLIT_DATE]


# A genuine jump is no action


def test_the_jump_stays_in_the_adjusted_history():
    life = TickerLife(
        "AAA", jumps={JUMP_DATE: 0.6}, dividends={date(2024, 9, 16): 1.0}, splits={date(2024, 10, 1): 2.0}
    )
    day_before = NYSE_CALENDAR.sessions_back(JUMP_DATE, 2)
    raw = life.raw_bars()
    final = ReplaySource([life], clock=lambda: after_close(SPAN[1])).final_history()
    move = row(final, JUMP_DATE)["close"] / row(final, day_before)["close"]
    assert move == pytest.approx(row(raw, JUMP_DATE)["close"] / row(raw, day_before)["close"], rel=1e-12)
    assert abs(np.log(move / 1.6)) < 5 * life.volatility
    assert row(final, JUMP_DATE)["dividends"] == 0 and row(final, JUMP_DATE)["stock_splits"] == 0


# Yahoo's other habits


def test_a_session_missing_at_the_first_fetch_appears_two_sessions_later():
    life = TickerLife("AAA", missing={GAP: 2})
    answers = answers_at_each_run(life, through=date(2024, 9, 9))
    has_gap = {session: GAP in prices["session_date"].to_list() for session, prices in answers.items()}
    assert [has_gap[d] for d in (date(2024, 9, 4), date(2024, 9, 5), date(2024, 9, 6), date(2024, 9, 9))] == [
        False,
        False,
        True,
        True,
    ]
    assert row(answers[date(2024, 9, 6)], GAP) == row(life.raw_bars(), GAP)


def test_a_rate_limited_day_fails_every_ticker():
    limited = date(2024, 5, 1)
    lives = [TickerLife("AAA", rate_limited={limited}), TickerLife("BBB")]
    for moment in (datetime(2024, 5, 1, 14, tzinfo=UTC), after_close(limited)):
        result = fetch_at(lives, moment, tickers=["AAA", "BBB", "NOPE"])
        assert result.failures == dict.fromkeys(["AAA", "BBB", "NOPE"], RATE_LIMITED)
        assert result.prices.is_empty()
    assert RATE_LIMITED.startswith("rate limited")
    assert fetch_at(lives, after_close(date(2024, 5, 2))).failures == {}


def test_a_24_7_life_has_weekend_sessions():
    life = TickerLife("BTC-USD", calendar="24/7", start=date(2024, 3, 1), end=date(2024, 3, 31))
    saturday = date(2024, 3, 2)
    final = ReplaySource([life], clock=lambda: after_close(SPAN[1])).final_history()
    assert final["session_date"].to_list() == [date(2024, 3, 1) + timedelta(days=k) for k in range(31)]
    assert daemon_runs(life)[1] == (saturday, datetime(2024, 3, 3, 0, 0, tzinfo=UTC))
    at_saturdays_run = fetch_at(life, after_close(saturday, "24/7"), end=saturday).prices
    assert at_saturdays_run["session_date"][-1] == saturday
    assert row(at_saturdays_run, saturday) == row(final, saturday)


def test_another_calendars_sessions_and_closes_are_its_own():
    life = TickerLife("7203.T", calendar="XTKS", start=date(2024, 4, 1), end=date(2024, 4, 30))
    tokyo = trading_calendar("XTKS")
    assert life.sessions() == tokyo.sessions_between(date(2024, 4, 1), date(2024, 4, 30))
    assert [run.at for run in daemon_runs(life)] == [tokyo.session_close(d) for d in life.sessions()]
    morning_in_tokyo = datetime(2024, 4, 1, 1, 0, tzinfo=UTC)  # 10:00 there: April 1's bar is live
    assert fetch_at(life, morning_in_tokyo).prices["session_date"].to_list() == [date(2024, 4, 1)]


# Determinism, and what a backfill afterwards sees


def test_the_same_clock_gives_the_same_answer():
    def life() -> TickerLife:
        return TickerLife("AAA", dividends={EX_DATE: 1.5}, splits={SPLIT_DATE: 2.0}, missing={GAP: 2})

    midday = datetime(2024, 9, 5, 17, 0, tzinfo=UTC)
    source = ReplaySource([life()], clock=lambda: midday)
    first = source.fetch(["AAA"], *SPAN).prices
    assert first.equals(source.fetch(["AAA"], *SPAN).prices)
    assert first.equals(fetch_at(life(), midday).prices)
    assert not np.allclose(closes(first), closes(fetch_at(replace(life(), seed=1), midday).prices))


def test_a_day_by_day_replay_ends_in_the_final_history():
    life = TickerLife(
        "AAA", dividends={EX_DATE: 1.5}, splits={SPLIT_DATE: 2.0}, jumps={JUMP_DATE: 0.6}, missing={GAP: 2}
    )
    runs = daemon_runs(life)
    now = [runs[0].at]
    source = ReplaySource([life], clock=lambda: now[0])
    for run in runs:
        now[0] = run.at
        prices = source.fetch(["AAA"], *SPAN).prices
        assert prices["session_date"][-1] == (previous_session(GAP) if run.session == GAP else run.session)
    assert prices.equals(source.final_history(["AAA"]))
    assert len(source.calls) == len(life.sessions())


def test_the_final_history_holds_a_session_filled_after_the_span():
    last = date(2024, 12, 31)
    source = ReplaySource([TickerLife("AAA", missing={last: 3})], clock=lambda: after_close(last))
    assert last not in source.fetch(["AAA"], *SPAN).prices["session_date"].to_list()
    assert source.final_history()["session_date"][-1] == last


def test_daemon_runs_are_each_sessions_close_plus_settle():
    life = TickerLife("AAA", start=date(2024, 11, 25), end=date(2024, 11, 29))
    runs = daemon_runs(life, settle=timedelta(minutes=5))
    assert [run.session for run in runs] == NYSE_CALENDAR.sessions_between(date(2024, 11, 25), date(2024, 11, 29))
    assert runs[-1].at == datetime(2024, 11, 29, 18, 5, tzinfo=UTC)  # the day after Thanksgiving closes at 13:00


def test_an_event_off_the_lifes_sessions_is_a_value_error():
    with pytest.raises(ValueError, match="not a XNYS session"):
        ReplaySource([TickerLife("AAA", dividends={date(2024, 3, 16): 1.0})], clock=lambda: after_close(EX_DATE))
    with pytest.raises(ValueError, match="one life per ticker"):
        ReplaySource([TickerLife("AAA"), TickerLife("AAA", seed=1)], clock=lambda: after_close(EX_DATE))
    with pytest.raises(ValueError, match="at least 1 session later"):
        ReplaySource([TickerLife("AAA", missing={GAP: 0})], clock=lambda: after_close(EX_DATE))
