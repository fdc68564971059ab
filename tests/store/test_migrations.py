"""The migrations are the schema: applied from scratch they give exactly forecaster.store.schema, on both backends."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from forecaster.context import CycleContext
from forecaster.errors import UserError
from forecaster.model.presets import PRESETS
from forecaster.store.database import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    upgrade,
)
from forecaster.store.schema import metadata
from forecaster.walks import catch_up, owed_sessions
from tests.support import paths
from tests.support.fakes import FaultySource

TABLES = {"prices", "runs", "run_failures", "model_states", "training_losses", "predictions"}


def schema_differences(engine: sa.Engine, target: sa.MetaData = metadata) -> list:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), target)


def test_upgrading_from_scratch_reaches_head_and_matches_the_schema_module(database_url):
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    assert "prediction_accuracy" in sa.inspect(engine).get_view_names()
    assert schema_differences(engine) == []
    engine.dispose()


def test_the_alembic_command_line_migrates_from_a_checkout_on_the_forecaster_database_setting(database_url):
    """`alembic upgrade head` at the repository root (alembic.ini), the database named only by
    FORECASTER_DATABASE_URL, as the README says: the same head as `forecaster db upgrade`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTER_")}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=paths.ROOT,
        env=env | {"FORECASTER_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


def test_the_schema_comparison_does_notice_a_difference(migrated_engine):
    changed = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    sa.Table("prices", changed, sa.Column("split_factor", sa.Float), extend_existing=True)
    differences = schema_differences(migrated_engine, changed)
    assert [(kind, column.name) for kind, _, table, column in differences] == [("add_column", "split_factor")]


def test_downgrading_to_base_removes_everything_and_upgrading_again_restores_it(migrated_engine):
    with migrated_engine.connect() as connection, connection.begin():
        command.downgrade(alembic_config(connection), "base")
    inspector = sa.inspect(migrated_engine)
    assert set(inspector.get_table_names()) <= {"alembic_version"}
    assert inspector.get_view_names() == []
    assert current_revision(migrated_engine) is None

    upgrade(migrated_engine)
    assert current_revision(migrated_engine) == head_revision()
    assert schema_differences(migrated_engine) == []


def test_upgrade_takes_a_url_and_a_target_revision_and_may_be_repeated(database_url):
    upgrade(database_url, "0001")
    upgrade(database_url, "0001")
    engine = make_engine(database_url)
    assert current_revision(engine) == "0001"
    engine.dispose()


def test_a_database_from_a_newer_version_is_a_user_error(migrated_engine):
    with migrated_engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(UserError, match="made by a newer version of forecaster .*'9999'.*: upgrade forecaster$"):
        upgrade(migrated_engine)


def test_two_processes_upgrading_at_once_both_succeed(database_url):
    """As when the daemon and `forecaster db upgrade` (or two containers) start together."""
    script = (
        "import sys; from forecaster.store.database import upgrade; print(flush=True); input(); upgrade(sys.argv[1])"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, database_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in processes:  # wait until both have imported the package ...
        process.stdout.readline()
    for process in processes:  # ... then release them together
        process.stdin.write("\n")
        process.stdin.flush()
    outcomes = [(process.wait(timeout=60), process.communicate()[1]) for process in processes]
    assert outcomes == [(0, ""), (0, "")]
    engine = make_engine(database_url)
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []
    engine.dispose()


def test_upgrading_a_database_with_forecasts_keeps_them_and_starts_their_series_at_the_first(database_url):
    engine = make_engine(database_url)
    upgrade(engine, "0003")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO runs (kind, as_of, preset, started_at, status) VALUES ('daily', '2024-03-04', 'default', '2024-03-04 23:00:00+00', 'ok')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO predictions (ticker, preset, target_session, as_of, predicted_close, last_close, run_id, created_at) "
                "VALUES ('SPY', 'default', '2024-03-05', '2024-03-04', 101.0, 100.0, 1, '2024-03-04 23:00:00+00')"
            )
        )

    upgrade(engine)

    with engine.connect() as connection:
        assert connection.execute(
            sa.text("SELECT p.ticker, r.kind FROM predictions p JOIN runs r ON r.id = p.run_id")
        ).all() == [("SPY", "daily")]
        if engine.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert connection.execute(sa.text("SELECT first_as_of FROM forecast_series")).scalar_one() in (
            "2024-03-04",
            date(2024, 3, 4),
        )
    engine.dispose()


def test_a_session_given_up_for_a_close_not_published_yet_is_owed_again_after_the_upgrade(database_url):
    """Before 0006 a "no close for D" failure counted toward giving D up, though the close may only
    have been late; 0006 moves those failures to the 'prices' stage, which is never given up."""
    engine = make_engine(database_url)
    upgrade(engine, "0005")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO forecast_series (preset, ticker, first_as_of, created_at) "
                "VALUES ('default', 'AAA', '2024-03-04', '2024-03-04 23:00:00+00')"
            )
        )
        for _ in range(3):  # three cycles of Tuesday, each failed: AAA's Tuesday was given up
            run_id = connection.execute(
                sa.text(
                    "INSERT INTO runs (kind, as_of, preset, started_at, status) "
                    "VALUES ('daily', '2024-03-05', 'default', '2024-03-05 23:00:00+00', 'failed') RETURNING id"
                )
            ).scalar_one()
            connection.execute(
                sa.text(
                    "INSERT INTO run_failures (run_id, ticker, stage, reason) "
                    "VALUES (:id, 'AAA', 'validate', 'no close for 2024-03-05')"
                ),
                {"id": run_id},
            )

    upgrade(engine)
    context = CycleContext(engine=engine, source=FaultySource(seed=5), tickers=["AAA"], preset=PRESETS["default"])
    owed = owed_sessions(context, date(2024, 3, 6))
    catch_up(context, date(2024, 3, 6))

    with engine.connect() as connection:
        stages = connection.execute(sa.text("SELECT DISTINCT stage FROM run_failures")).scalars().all()
        forecast = connection.execute(sa.text("SELECT count(*) FROM predictions WHERE ticker = 'AAA'")).scalar_one()
    engine.dispose()
    assert owed == {"AAA": [date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)]}
    assert stages == ["prices"]
    assert forecast == 3


def test_forecasts_made_before_retention_get_their_fits_summary_from_the_stored_losses(database_url):
    """0007 keeps every fit's epochs and first and last loss on its forecast, read from
    training_losses, before any curve may be pruned; a forecast without a curve keeps NULLs."""
    engine = make_engine(database_url)
    upgrade(engine, "0006")
    with engine.begin() as connection:
        run_id = connection.execute(
            sa.text(
                "INSERT INTO runs (kind, as_of, preset, started_at, status) "
                "VALUES ('daily', '2024-03-05', 'default', '2024-03-05 23:00:00+00', 'ok') RETURNING id"
            )
        ).scalar_one()
        for ticker in ("AAA", "BBB"):
            connection.execute(
                sa.text(
                    "INSERT INTO predictions (ticker, preset, target_session, as_of, predicted_close, last_close, "
                    "run_id, created_at) VALUES (:t, 'default', '2024-03-06', '2024-03-05', 101, 100, :id, "
                    "'2024-03-05 23:00:00+00')"
                ),
                {"t": ticker, "id": run_id},
            )
        for epoch, loss in ((1, 0.9), (2, 0.5), (3, 0.4), (10, 0.3), (20, 0.25)):
            connection.execute(
                sa.text(
                    "INSERT INTO training_losses (ticker, preset, trained_through, epoch, loss, run_id) "
                    "VALUES ('AAA', 'default', '2024-03-05', :e, :l, :id)"
                ),
                {"e": epoch, "l": loss, "id": run_id},
            )

    upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT ticker, fit_epochs, fit_first_loss, fit_last_loss FROM predictions ORDER BY ticker")
        ).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [("AAA", 20, 0.9, 0.25), ("BBB", None, None, None)]
