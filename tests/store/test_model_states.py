"""Training results: states, losses and forecasts written together, idempotently; warm-start states read back."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
import sqlalchemy as sa

from forecaster.prices.sources.base import PRICE_SCHEMA
from forecaster.store.model_states import (
    StoredState,
    TrainingResultRow,
    load_latest_states,
    save_training_results,
    stored_epochs,
)
from forecaster.store.prices import upsert_prices
from forecaster.store.runs import start_run
from forecaster.store.schema import model_states, predictions, training_losses

CREATED = datetime(2024, 3, 5, 23, 0, tzinfo=UTC)
PARAMS = {
    name: 0.1 * k + 1e-17 * k
    for k, name in enumerate(["w_f", "u_f", "b_f", "w_i", "u_i", "b_i", "w_o", "u_o", "b_o", "w_c", "u_c", "b_c"])
}
ADAM = {"step": 300, "exp_avg": [1e-3] * 12, "exp_avg_sq": [1e-7] * 12}


def new_run(engine: sa.Engine) -> int:
    with engine.begin() as connection:
        return start_run("daily", connection=connection, as_of=None, preset="seed", host="test", started_at=CREATED)


def result(ticker: str, trained_through: date, run_id: int, **changes) -> TrainingResultRow:
    row = TrainingResultRow(
        ticker=ticker,
        preset="seed",
        trained_through=trained_through,
        params=PARAMS,
        optimizer_state=ADAM,
        config_hash="c0ffee",
        losses=[0.5, 0.25, 0.125],
        as_of=trained_through,
        target_session=trained_through + timedelta(days=1),
        predicted_close=101.5,
        last_close=100.0,
        run_id=run_id,
        created_at=CREATED,
    )
    return dataclasses.replace(row, **changes)


def all_rows(engine: sa.Engine) -> dict[str, list[tuple]]:
    with engine.connect() as connection:
        return {
            table.name: [tuple(r) for r in connection.execute(sa.select(table).order_by(*table.primary_key.columns))]
            for table in (model_states, training_losses, predictions)
        }


def test_saving_the_same_results_twice_leaves_the_same_rows(migrated_engine):
    run_id = new_run(migrated_engine)
    rows = [result("SPY", date(2024, 3, 4), run_id), result("QQQ", date(2024, 3, 4), run_id, optimizer_state=None)]
    with migrated_engine.begin() as connection:
        save_training_results(rows, connection=connection)
    first = all_rows(migrated_engine)
    with migrated_engine.begin() as connection:
        save_training_results(rows, connection=connection)
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
        save_training_results([result("SPY", date(2024, 3, 4), first_run)], connection=connection)
        save_training_results(
            [result("SPY", date(2024, 3, 4), second_run, losses=[0.4], predicted_close=99.0, config_hash="beef")],
            connection=connection,
        )
    rows = all_rows(migrated_engine)
    assert [(epoch, loss, run) for _, _, _, epoch, loss, run in rows["training_losses"]] == [(1, 0.4, second_run)]
    assert [(r[4], r[6]) for r in rows["predictions"]] == [(99.0, second_run)]
    assert [(r[5], r[6]) for r in rows["model_states"]] == [("beef", second_run)]


def test_results_repeating_a_key_are_refused(migrated_engine):
    run_id = new_run(migrated_engine)
    with pytest.raises(ValueError, match="given twice"), migrated_engine.begin() as connection:
        save_training_results([result("SPY", date(2024, 3, 4), run_id)] * 2, connection=connection)


def test_the_latest_state_earlier_than_the_given_day_is_loaded(migrated_engine):
    run_id = new_run(migrated_engine)
    with migrated_engine.begin() as connection:
        save_training_results(
            [
                result("SPY", day, run_id, params={**PARAMS, "w_f": float(day.day)})
                for day in (date(2024, 3, 1), date(2024, 3, 4), date(2024, 3, 5))
            ]
            + [result("QQQ", date(2024, 3, 1), run_id, optimizer_state=None)]
            + [result("SPY", date(2024, 3, 4), run_id, preset="default")],
            connection=connection,
        )
    with migrated_engine.connect() as connection:
        states = load_latest_states(["SPY", "QQQ", "IWM"], "seed", connection=connection, before=date(2024, 3, 5))
        assert load_latest_states(["SPY"], "seed", connection=connection, before=date(2024, 3, 1)) == {}
        assert load_latest_states([], "seed", connection=connection, before=date(2024, 3, 5)) == {}
    assert states == {
        "SPY": StoredState("SPY", "seed", date(2024, 3, 4), {**PARAMS, "w_f": 4.0}, ADAM, "c0ffee"),
        "QQQ": StoredState("QQQ", "seed", date(2024, 3, 1), PARAMS, None, "c0ffee"),
    }


def test_five_thousand_tickers_are_written_in_a_few_statements(migrated_engine):
    """5,000 prices, states and forecasts and their losses: bulk statements, never one per row."""
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
        save_training_results(rows, connection=connection)

    with migrated_engine.connect() as connection:
        counts = [
            connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (model_states, training_losses, predictions)
        ]
    assert counts == [5000, 5000 * len(stored_epochs(50)), 5000]
    assert len(statements) <= 20, f"{len(statements)} statements"
