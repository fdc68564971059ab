"""The closes a forecast step works on (forecaster.model.closes): each ticker's latest closes, right-aligned."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from forecaster.model.closes import ClosesMatrix

MON, TUE, WED = date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)


def _matrix() -> ClosesMatrix:
    frame = pl.DataFrame(
        {
            "ticker": ["B", "A", "A", "A", "B"],
            "session_date": [TUE, WED, MON, TUE, MON],
            "close": [21.0, 12.0, 10.0, 11.0, 20.0],
        }
    )
    return ClosesMatrix.from_frame(frame, ["A", "B", "C"], width=3)


def test_the_closes_matrix_is_each_tickers_latest_closes_right_aligned():
    matrix = _matrix()

    np.testing.assert_array_equal(matrix.closes[0], [10.0, 11.0, 12.0])
    np.testing.assert_array_equal(matrix.closes[1, 1:], [20.0, 21.0])
    assert np.isnan(matrix.closes[1, 0]) and np.isnan(matrix.closes[2]).all()
    assert matrix.counts.tolist() == [3, 2, 0]
    assert matrix.last_dates() == [WED, TUE, None]


def test_a_matrix_narrower_than_a_history_keeps_its_latest_closes():
    frame = pl.DataFrame({"ticker": ["A"] * 3, "session_date": [MON, TUE, WED], "close": [1.0, 2.0, 3.0]})

    assert ClosesMatrix.from_frame(frame, ["A"], width=2).closes.tolist() == [[2.0, 3.0]]


def test_rows_are_taken_in_the_order_asked_and_closes_looked_up_by_session():
    matrix = _matrix().rows(["B", "A"])

    assert matrix.tickers == ["B", "A"]
    assert matrix.close_on([MON, WED]).tolist() == [20.0, 12.0]
    assert np.isnan(matrix.close_on([WED, None])).tolist() == [True, True]
