"""Retention: each ticker keeps its latest model states and loss curves; forecasts keep their fit's summary."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from forecaster.store.model_states import load_latest_checkpoints
from forecaster.store.results import write_results
from forecaster.store.retention import Pruned, Retention, prune_database
from forecaster.store.runs import start_run
from forecaster.store.schema import model_states, predictions, training_losses
from tests.support.results import CREATED, ticker_result

RETENTION = Retention(states=2, loss_curves=3)
FIRST = date(2024, 3, 1)


def days(count: int, start: date = FIRST) -> list[date]:
    return [start + timedelta(days=k) for k in range(count)]


def write_sessions(engine: sa.Engine, tickers: list[str], sessions: list[date], retention: Retention) -> None:
    """One write per session, as the cycle does: every ticker's fit of that session."""
    with engine.begin() as connection:
        run_id = start_run("daily", connection=connection, as_of=None, preset="seed", host="test", started_at=CREATED)
    for day in sessions:
        with engine.begin() as connection:
            write_results(
                [ticker_result(t, day, run_id, losses=[0.5, 0.25, day.day / 100]) for t in tickers],
                connection=connection,
                retention=retention,
            )


def kept(engine: sa.Engine, table: sa.Table, ticker: str) -> list[date]:
    with engine.connect() as connection:
        return sorted(
            set(
                connection.execute(
                    sa.select(table.c.trained_through).where(table.c.ticker == ticker, table.c.preset == "seed")
                ).scalars()
            )
        )


def forecasts(engine: sa.Engine, ticker: str) -> list[tuple]:
    p = predictions.c
    with engine.connect() as connection:
        statement = (
            sa.select(p.as_of, p.fit_epochs, p.fit_first_loss, p.fit_last_loss)
            .where(p.ticker == ticker)
            .order_by(p.as_of)
        )
        return [tuple(row) for row in connection.execute(statement)]


def test_each_write_keeps_the_latest_states_and_loss_curves_of_its_tickers_and_every_forecast(migrated_engine):
    sessions = days(6)
    write_sessions(migrated_engine, ["SPY", "QQQ"], sessions, RETENTION)

    for ticker in ("SPY", "QQQ"):
        assert kept(migrated_engine, model_states, ticker) == sessions[-2:]
        assert kept(migrated_engine, training_losses, ticker) == sessions[-3:]
        assert forecasts(migrated_engine, ticker) == [(day, 3, 0.5, day.day / 100) for day in sessions]
    with migrated_engine.connect() as connection:
        latest = load_latest_checkpoints(["SPY"], "seed", connection=connection, before=sessions[-1] + timedelta(1))
    assert latest["SPY"].trained_through == sessions[-1]


def test_a_backfill_of_an_earlier_period_keeps_what_its_next_session_warm_starts_from(migrated_engine):
    """States newer than the session written are never counted or touched: the backfill's state
    of each earlier session survives until its next session has been written."""
    later = days(3, date(2024, 6, 3))
    earlier = days(4)
    write_sessions(migrated_engine, ["SPY"], later, RETENTION)
    for k, day in enumerate(earlier):
        write_sessions(migrated_engine, ["SPY"], [day], RETENTION)
        assert kept(migrated_engine, model_states, "SPY") == earlier[max(0, k - 1) : k + 1] + later[-2:]
        with migrated_engine.connect() as connection:
            warm = load_latest_checkpoints(["SPY"], "seed", connection=connection, before=day + timedelta(1))
        assert warm["SPY"].trained_through == day


def test_a_ticker_not_written_keeps_its_states_until_the_database_is_pruned(migrated_engine):
    sessions = days(5)
    write_sessions(migrated_engine, ["OLD"], sessions, Retention(states=100, loss_curves=100))
    write_sessions(migrated_engine, ["SPY"], sessions, RETENTION)
    assert kept(migrated_engine, model_states, "OLD") == sessions

    with migrated_engine.begin() as connection:
        pruned = prune_database(RETENTION, connection=connection)
    assert pruned == Pruned(states=3, loss_rows=2 * 3)  # OLD's 3 oldest states and 2 oldest curves of 3 epochs
    assert kept(migrated_engine, model_states, "OLD") == sessions[-2:]
    assert kept(migrated_engine, training_losses, "OLD") == sessions[-3:]
    assert kept(migrated_engine, model_states, "SPY") == sessions[-2:]
    assert len(forecasts(migrated_engine, "OLD")) == 5

    with migrated_engine.begin() as connection:
        assert prune_database(RETENTION, connection=connection) == Pruned(states=0, loss_rows=0)
