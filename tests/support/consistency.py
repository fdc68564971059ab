"""What every run must leave true, however it was stopped: no ticker half written, and runs that add up.

Each check counts the rows that break a rule and returns one line per rule broken ("3 model
states without a forecast"), so a test asserts `== []` and a failure says what is wrong. Each
takes a database URL or an engine; a database without the tables yet (a SQLite file not made
yet, or not migrated) has nothing half written, and is never created by looking.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

_LATEST_FORECASTS_WITHOUT_STATE = """
    SELECT count(*) FROM predictions p WHERE p.as_of = (SELECT max(q.as_of) FROM predictions q
      WHERE q.ticker = p.ticker AND q.preset = p.preset) AND NOT EXISTS (SELECT 1 FROM model_states s
      WHERE s.ticker = p.ticker AND s.preset = p.preset AND s.trained_through = p.as_of)"""
_FORECASTS_WITHOUT_FIT = "SELECT count(*) FROM predictions WHERE fit_epochs IS NULL OR fit_last_loss IS NULL"
_STATES_WITHOUT_FORECAST = """
    SELECT count(*) FROM model_states s WHERE NOT EXISTS (SELECT 1 FROM predictions p
      WHERE s.ticker = p.ticker AND s.preset = p.preset AND s.trained_through = p.as_of)"""
_STATES_WITHOUT_LOSSES = """
    SELECT count(*) FROM model_states s WHERE NOT EXISTS (SELECT 1 FROM training_losses l
      WHERE s.ticker = l.ticker AND s.preset = l.preset AND s.trained_through = l.trained_through)"""
_LOSSES_WITHOUT_FORECAST = """
    SELECT count(*) FROM training_losses l WHERE NOT EXISTS (SELECT 1 FROM predictions p
      WHERE p.ticker = l.ticker AND p.preset = l.preset AND p.as_of = l.trained_through)"""
_STATES_WHOSE_LOSSES_ARE_NOT_A_FIT = """
    SELECT count(*) FROM model_states s WHERE (SELECT count(*) || ':' || coalesce(max(epoch), 0)
      FROM training_losses l WHERE s.ticker = l.ticker AND s.preset = l.preset
      AND s.trained_through = l.trained_through) NOT IN ({fits})"""


def half_written(database: str | sa.Engine, *, fits: Iterable[tuple[int, int]] = ()) -> list[str]:
    """Tickers half written: a ticker's latest forecast without the model state of the fit that
    made it (older states are pruned: forecaster.store.retention), a forecast without its fit's
    summary, a model state without its forecast or without its losses.

    With `fits` (for each kind of fit, the number of epochs whose losses it stores and its last
    epoch), also losses without a forecast, and model states whose losses are not exactly those
    of one of the fits."""
    checks = {
        "latest forecasts without a model state": _LATEST_FORECASTS_WITHOUT_STATE,
        "forecasts without their fit's epochs and losses": _FORECASTS_WITHOUT_FIT,
        "model states without a forecast": _STATES_WITHOUT_FORECAST,
        "model states without losses": _STATES_WITHOUT_LOSSES,
    }
    shapes = [f"'{stored}:{last}'" for stored, last in fits]
    if shapes:
        checks["losses without a forecast"] = _LOSSES_WITHOUT_FORECAST
        checks[f"model states whose losses are not those of one fit ({', '.join(shapes)})"] = (
            _STATES_WHOSE_LOSSES_ARE_NOT_A_FIT.format(fits=", ".join(shapes))
        )
    return _broken(database, checks, needs={"predictions", "model_states", "training_losses"})


def bookkeeping_problems(database: str | sa.Engine, *, watch_list: int | Mapping[str, int]) -> list[str]:
    """Runs that do not add up (their counts against what they wrote, and against a watch list of
    `watch_list` tickers, or of that many per calendar, once they completed), runs still running,
    tasks left over."""
    expected = (
        "CASE calendar " + " ".join(f"WHEN '{c}' THEN {int(n)}" for c, n in watch_list.items()) + " ELSE -1 END"
        if isinstance(watch_list, Mapping)
        else str(int(watch_list))
    )
    checks = {
        "runs whose tickers_ok is not their forecasts": """
            SELECT count(*) FROM runs r WHERE r.tickers_ok <> (SELECT count(*) FROM predictions p WHERE p.run_id = r.id)""",
        "runs whose tickers_failed is not their failures": """
            SELECT count(*) FROM runs r WHERE r.tickers_failed <> (SELECT count(*) FROM run_failures f WHERE f.run_id = r.id)""",
        "runs still running": "SELECT count(*) FROM runs WHERE status = 'running'",
        "tasks left in the queue": "SELECT count(*) FROM cycle_tasks",
        "completed runs whose counts do not cover the watch list": f"""
            SELECT count(*) FROM runs WHERE kind = 'daily' AND status IN ('ok', 'partial')
              AND tickers_ok + tickers_failed + tickers_skipped + tickers_waiting <> {expected}""",
    }
    return _broken(database, checks, needs={"runs", "run_failures", "predictions", "cycle_tasks"})


def _broken(database: str | sa.Engine, checks: dict[str, str], *, needs: set[str]) -> list[str]:
    with _connected(database, needs) as connection:
        if connection is None:
            return []
        counts = {what: connection.execute(sa.text(sql)).scalar_one() for what, sql in checks.items()}
    return [f"{count} {what}" for what, count in counts.items() if count]


@contextmanager
def _connected(database: str | sa.Engine, needs: set[str]) -> Iterator[sa.Connection | None]:
    """A connection, or None while the database lacks a table of `needs` (a missing SQLite file is not created)."""
    if isinstance(database, sa.Engine):
        engine, owned = database, False
    else:
        url = sa.make_url(database)
        path = url.database if url.get_backend_name() == "sqlite" else None
        if path and path != ":memory:" and not Path(path).exists():
            yield None
            return
        engine, owned = sa.create_engine(url), True
    try:
        with engine.connect() as connection:
            yield connection if needs <= set(sa.inspect(connection).get_table_names()) else None
    finally:
        if owned:
            engine.dispose()
