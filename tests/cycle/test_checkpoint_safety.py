"""A stored model state that is corrupt or from another configuration is never warm-started from.

Each case runs a real cycle on day 1 (first fits of AAA and BBB), tampers with AAA's stored
state by SQL, and runs day 2: AAA must be refitted from scratch, with a log line saying why,
and its new state must be exactly a first fit's (the optimizer step count and the epochs of
a first fit, the parameters of a ticker fitted for the first time on day 2); BBB, untouched,
warm-starts as usual. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from datetime import date

import pytest
import sqlalchemy as sa

from forecaster.context import CycleContext
from forecaster.cycle import run_cycle
from forecaster.model.presets import PRESETS
from forecaster.prices.sources.synthetic import SyntheticSource
from forecaster.store.database import make_engine, upgrade

PRESET = PRESETS["default"]
DAY1, DAY2 = date(2024, 3, 4), date(2024, 3, 5)
STEPS_PER_EPOCH = -(-PRESET.window // PRESET.batch_size)
FIRST_FIT_STEPS = PRESET.epochs_first_fit * STEPS_PER_EPOCH
WARM_STEPS = FIRST_FIT_STEPS + PRESET.epochs_per_session * STEPS_PER_EPOCH

GOOD_ADAM = {"step": 1, "exp_avg": [0.0] * 12, "exp_avg_sq": [0.0] * 12}

#: (what is wrong, the SQL SET clause applied to AAA's day-1 state, part of the expected log line)
TAMPERING = [
    ("params are not an object", {"params": json.dumps("not the parameters")}, "unreadable"),
    ("params miss a weight", {"params": json.dumps({"w_f": 0.5})}, "unreadable"),
    ("a parameter is text", {"params": "PARAMS_WITH_TEXT"}, "unreadable"),
    ("a parameter overflows to infinity", {"params": "PARAMS_WITH_1E400"}, "unreadable"),
    (
        "optimizer moments have 11 values, not 12",
        {"optimizer_state": json.dumps(GOOD_ADAM | {"exp_avg": [0.0] * 11})},
        "unreadable",
    ),
    ("optimizer step is not a number", {"optimizer_state": json.dumps(GOOD_ADAM | {"step": "many"})}, "unreadable"),
    (
        "optimizer second moment is negative",
        {"optimizer_state": json.dumps(GOOD_ADAM | {"exp_avg_sq": [-1.0] * 12})},
        "unreadable",
    ),
    ("optimizer state is a list", {"optimizer_state": json.dumps([1, 2, 3])}, "unreadable"),
    (
        "trained with another configuration (window, preset change)",
        {"config_hash": "'0123456789abcdef'"},
        "another configuration",
    ),
]


def _context(engine: sa.Engine, tickers: tuple[str, ...]) -> CycleContext:
    return CycleContext(engine=engine, source=SyntheticSource(seed=3), tickers=tickers, preset=PRESET)


def _state(engine: sa.Engine, ticker: str, day: date) -> sa.Row:
    with engine.connect() as connection:
        return connection.execute(
            sa.text(
                "SELECT params, optimizer_state, config_hash FROM model_states "
                "WHERE ticker = :t AND trained_through = :d"
            ),
            {"t": ticker, "d": day},
        ).one()


def _as_json(value):
    return json.loads(value) if isinstance(value, str) else value


def _epochs(engine: sa.Engine, ticker: str, day: date) -> int:
    """The number of epochs of the fit that ended on `day` (its last stored epoch)."""
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT max(epoch) FROM training_losses WHERE ticker = :t AND trained_through = :d"),
            {"t": ticker, "d": day},
        ).scalar_one()


def _tamper(engine: sa.Engine, column: str, value: str) -> None:
    if value in ("PARAMS_WITH_TEXT", "PARAMS_WITH_1E400"):
        params = _as_json(_state(engine, "AAA", DAY1).params)
        text = json.dumps(params).replace(json.dumps(params["w_f"]), '"w_f is text"' if "TEXT" in value else "1e400")
        value = "'" + text + "'"
    elif column != "config_hash":
        value = "'" + value + "'"
    with engine.begin() as connection:
        connection.execute(
            sa.text(f"UPDATE model_states SET {column} = {value} WHERE ticker = 'AAA' AND trained_through = :d"),
            {"d": DAY1},
        )


@pytest.fixture(scope="module")
def fresh_fit_on_day2(tmp_path_factory) -> dict:
    """AAA's state on day 2 when it is fitted for the first time that day."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('fresh') / 'fresh.db'}")
    upgrade(engine)
    run_cycle(_context(engine, ("AAA",)), DAY2)
    state = _state(engine, "AAA", DAY2)
    engine.dispose()
    return _as_json(state.params)


@pytest.mark.parametrize("what, change, logged", TAMPERING, ids=[t[0] for t in TAMPERING])
def test_a_bad_stored_state_is_refitted_from_scratch_with_a_log_line(
    migrated_engine, caplog, fresh_fit_on_day2, what, change, logged
):
    engine = migrated_engine
    run_cycle(_context(engine, ("AAA", "BBB")), DAY1)
    [(column, value)] = change.items()
    _tamper(engine, column, value)

    with caplog.at_level(logging.INFO, logger="forecaster.worker"):
        outcome = run_cycle(_context(engine, ("AAA", "BBB")), DAY2)

    assert (outcome.status, outcome.tickers_ok) == ("ok", 2)
    lines = [r.getMessage() for r in caplog.records if r.name == "forecaster.worker"]
    assert [line for line in lines if line.startswith("AAA:")] == [
        next(line for line in lines if line.startswith("AAA:") and logged in line and "refitting from scratch" in line)
    ], lines
    assert not [line for line in lines if line.startswith("BBB:")], "the untouched ticker warm-starts silently"
    refitted = _state(engine, "AAA", DAY2)
    assert _as_json(refitted.optimizer_state)["step"] == FIRST_FIT_STEPS
    assert _epochs(engine, "AAA", DAY2) == PRESET.epochs_first_fit
    assert _as_json(refitted.params) == fresh_fit_on_day2
    assert refitted.config_hash == PRESET.config_hash
    assert _as_json(_state(engine, "BBB", DAY2).optimizer_state)["step"] == WARM_STEPS
    assert _epochs(engine, "BBB", DAY2) == PRESET.epochs_per_session


def test_a_state_whose_text_is_not_json_is_refitted_and_the_cycle_goes_on(sqlite_url, caplog):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    run_cycle(_context(engine, ("AAA", "BBB")), DAY1)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE model_states SET params = '{\"w_f\": 0.5, tru' WHERE ticker = 'AAA'"))

    with caplog.at_level(logging.INFO, logger="forecaster.worker"):
        outcome = run_cycle(_context(engine, ("AAA", "BBB")), DAY2)

    assert (outcome.status, outcome.tickers_ok) == ("ok", 2)
    assert any(r.getMessage().startswith("AAA:") and "refitting from scratch" in r.getMessage() for r in caplog.records)
    assert _as_json(_state(engine, "AAA", DAY2).optimizer_state)["step"] == FIRST_FIT_STEPS
