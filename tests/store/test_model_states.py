"""A chunk's results: checkpoints, losses and forecasts written together, idempotently; checkpoints read back."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from forecaster.model.checkpoint import Checkpoint
from forecaster.price_frame import PRICE_SCHEMA
from forecaster.store.model_states import load_latest_checkpoints
from forecaster.store.prices import upsert_prices
from forecaster.store.results import write_results
from forecaster.store.retention import Retention
from forecaster.store.runs import start_run
from forecaster.store.schema import model_states, predictions, training_losses
from forecaster.store.training_losses import stored_epochs
from tests.support.results import CREATED, PARAMS, checkpoint, ticker_result


def new_run(engine: sa.Engine) -> int:
    with engine.begin() as connection:
        return start_run("daily", connection=connection, as_of=None, preset="seed", host="test", started_at=CREATED)


result = ticker_result
#: These tests are about what is written and read back; pruning is tests/store/test_retention.py's.
KEEP_ALL = Retention(states=1000, loss_curves=1000)


def all_rows(engine: sa.Engine) -> dict[str, list[tuple]]:
    with engine.connect() as connection:
        return {
            table.name: [tuple(r) for r in connection.execute(sa.select(table).order_by(*table.primary_key.columns))]
            for table in (model_states, training_losses, predictions)
        }


def test_saving_the_same_results_twice_leaves_the_same_rows(migrated_engine):
    run_id = new_run(migrated_engine)
    rows = [result("SPY", date(2024, 3, 4), run_id), result("QQQ", date(2024, 3, 4), run_id, adam_step=0)]
    with migrated_engine.begin() as connection:
        write_results(rows, connection=connection, retention=KEEP_ALL)
    first = all_rows(migrated_engine)
    with migrated_engine.begin() as connection:
        write_results(rows, connection=connection, retention=KEEP_ALL)
    assert all_rows(migrated_engine) == first
    assert [len(first[name]) for name in ("model_states", "training_losses", "predictions")] == [2, 6, 2]
    assert [(t, epoch, loss) for t, _, _, epoch, loss, _ in first["training_losses"] if t == "SPY"] == [
        ("SPY", 1, 0.5),
        ("SPY", 2, 0.25),
        ("SPY", 3, 0.125),
    ]


def test_saving_a_day_again_replaces_its_state_losses_and_forecast(migrated_engine):
    first_run, second_run = new_run(migrated_engine), new_run(migrated_engine)
    with migrated_engine.begin() as connection:
        write_results([result("SPY", date(2024, 3, 4), first_run)], connection=connection, retention=KEEP_ALL)
        write_results(
            [result("SPY", date(2024, 3, 4), second_run, losses=[0.4], predicted_close=99.0, config_hash="beef")],
            connection=connection,
            retention=KEEP_ALL,
        )
    rows = all_rows(migrated_engine)
    assert [(epoch, loss, run) for _, _, _, epoch, loss, run in rows["training_losses"]] == [(1, 0.4, second_run)]
    assert [(r[4], r[6]) for r in rows["predictions"]] == [(99.0, second_run)]
    assert [(r[5], r[6]) for r in rows["model_states"]] == [("beef", second_run)]


def test_results_repeating_a_key_are_refused(migrated_engine):
    run_id = new_run(migrated_engine)
    with pytest.raises(ValueError, match="given twice"), migrated_engine.begin() as connection:
        write_results([result("SPY", date(2024, 3, 4), run_id)] * 2, connection=connection, retention=KEEP_ALL)


def test_the_latest_checkpoint_earlier_than_the_given_day_is_loaded(migrated_engine):
    run_id = new_run(migrated_engine)
    with migrated_engine.begin() as connection:
        write_results(
            [
                result("SPY", day, run_id, params={**PARAMS, "w_f": float(day.day)})
                for day in (date(2024, 3, 1), date(2024, 3, 4), date(2024, 3, 5))
            ]
            + [result("QQQ", date(2024, 3, 1), run_id, adam_step=0, interval_state={"version": 1, "scores": [1.5]})]
            + [result("SPY", date(2024, 3, 4), run_id, preset="default")],
            connection=connection,
            retention=KEEP_ALL,
        )
    with migrated_engine.connect() as connection:
        states = load_latest_checkpoints(["SPY", "QQQ", "IWM"], "seed", connection=connection, before=date(2024, 3, 5))
        assert load_latest_checkpoints(["SPY"], "seed", connection=connection, before=date(2024, 3, 1)) == {}
        assert load_latest_checkpoints([], "seed", connection=connection, before=date(2024, 3, 5)) == {}
    assert sorted(states) == ["QQQ", "SPY"]
    _assert_same(states["SPY"], checkpoint(date(2024, 3, 4), params={**PARAMS, "w_f": 4.0}))
    _assert_same(
        states["QQQ"], checkpoint(date(2024, 3, 1), adam_step=0, interval_state={"version": 1, "scores": [1.5]})
    )


def _assert_same(loaded: object, expected: Checkpoint) -> None:
    """Equal to the last bit: the JSON columns keep every digit of a float64."""
    assert isinstance(loaded, Checkpoint), loaded
    assert (loaded.trained_through, loaded.config_hash, loaded.adam_step, loaded.interval_state) == (
        expected.trained_through,
        expected.config_hash,
        expected.adam_step,
        expected.interval_state,
    )
    for name in ("params", "exp_avg", "exp_avg_sq"):
        assert np.array_equal(getattr(loaded, name), getattr(expected, name)), name


def test_five_thousand_tickers_are_written_in_a_few_statements(migrated_engine):
    """5,000 prices, states and forecasts and their losses: a few bulk statements each (a staging
    table and one upsert from it), never one per row."""
    tickers = [f"T{k:04d}" for k in range(5000)]
    day = date(2024, 3, 4)
    closes = pl.DataFrame(
        {"ticker": tickers, "session_date": [day] * 5000, "close": [100.0 + k for k in range(5000)]},
        schema_overrides=PRICE_SCHEMA,
    ).with_columns(pl.lit(None, pl.Float64).alias(c) for c in ("open", "high", "low", "adj_close", "volume"))
    run_id = new_run(migrated_engine)
    rows = [result(t, day, run_id, losses=[1.0 / epoch for epoch in range(1, 51)]) for t in tickers]
    statements = []
    sa.event.listen(migrated_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    with migrated_engine.begin() as connection:
        assert upsert_prices(closes, connection=connection, source="test", fetched_at=CREATED) == 5000
        write_results(rows, connection=connection, retention=KEEP_ALL)

    with migrated_engine.connect() as connection:
        counts = [
            connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (model_states, training_losses, predictions)
        ]
    assert counts == [5000, 5000 * len(stored_epochs(50)), 5000]
    assert len(statements) <= 30, f"{len(statements)} statements"
