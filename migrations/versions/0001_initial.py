"""Initial schema: prices, runs, run_failures, model_states, training_losses, predictions, prediction_accuracy.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Written out in full rather than imported from forecaster.store.schema, so that this
revision keeps meaning what it meant when later revisions change the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Portable SQL (SQLite and PostgreSQL). Sign comparisons are spelled as CASE because
# SQLite builds without the math functions have no sign(); NULLIF guards a zero close.
_PREDICTED_MOVE = (
    "CASE WHEN p.predicted_close > p.last_close THEN 1 WHEN p.predicted_close < p.last_close THEN -1 ELSE 0 END"
)
_ACTUAL_MOVE = "CASE WHEN a.close > p.last_close THEN 1 WHEN a.close < p.last_close THEN -1 ELSE 0 END"
PREDICTION_ACCURACY = f"""
CREATE VIEW prediction_accuracy AS
SELECT
    p.ticker,
    p.preset,
    p.as_of,
    p.target_session,
    p.predicted_close,
    p.last_close,
    a.close AS actual_close,
    p.predicted_close - a.close AS error,
    ABS(p.predicted_close - a.close) AS abs_error,
    100.0 * ABS(p.predicted_close - a.close) / NULLIF(a.close, 0) AS pct_error,
    p.last_close - a.close AS naive_error,
    ABS(p.last_close - a.close) AS naive_abs_error,
    CASE
        WHEN a.close IS NULL THEN NULL
        WHEN ({_PREDICTED_MOVE}) = ({_ACTUAL_MOVE}) THEN 1
        ELSE 0
    END AS direction_hit,
    p.run_id
FROM predictions AS p
LEFT JOIN prices AS a ON a.ticker = p.ticker AND a.session_date = p.target_session
"""


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    _create_prices_and_runs()
    _create_training_tables()
    op.execute(PREDICTION_ACCURACY)


def _create_prices_and_runs() -> None:
    op.create_table(
        "prices",
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("session_date", sa.Date, nullable=False),
        sa.Column("open", sa.Float),
        sa.Column("high", sa.Float),
        sa.Column("low", sa.Float),
        sa.Column("close", sa.Float, nullable=False),
        sa.Column("adj_close", sa.Float),
        sa.Column("volume", sa.Float),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("fetched_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("ticker", "session_date", name="pk_prices"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("as_of", sa.Date),
        sa.Column("preset", sa.String(32)),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tickers_ok", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("tickers_failed", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("tickers_skipped", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("error", sa.Text),
        sa.Column("host", sa.String(255)),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.CheckConstraint("kind IN ('daily', 'backfill', 'fit')", name="ck_runs_kind"),
        sa.CheckConstraint("status IN ('running', 'ok', 'partial', 'failed', 'interrupted')", name="ck_runs_status"),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_table(
        "run_failures",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "ticker", name="pk_run_failures"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_failures_run_id_runs"),
        sa.CheckConstraint("stage IN ('fetch', 'validate', 'train', 'write')", name="ck_run_failures_stage"),
    )


def _create_training_tables() -> None:
    """Model states, training losses and predictions, each referring to the run that wrote it."""
    op.create_table(
        "model_states",
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("preset", sa.String(32), nullable=False),
        sa.Column("trained_through", sa.Date, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("optimizer_state", sa.JSON),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("ticker", "preset", "trained_through", name="pk_model_states"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_model_states_run_id_runs"),
    )
    op.create_table(
        "training_losses",
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("preset", sa.String(32), nullable=False),
        sa.Column("trained_through", sa.Date, nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("loss", sa.Float, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("ticker", "preset", "trained_through", "epoch", name="pk_training_losses"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_training_losses_run_id_runs"),
    )
    op.create_table(
        "predictions",
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("preset", sa.String(32), nullable=False),
        sa.Column("target_session", sa.Date, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("predicted_close", sa.Float, nullable=False),
        sa.Column("last_close", sa.Float, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("ticker", "preset", "target_session", name="pk_predictions"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_predictions_run_id_runs"),
    )
    op.create_index("ix_predictions_ticker_target_session", "predictions", ["ticker", "target_session"])
    op.create_index("ix_predictions_preset_target_session", "predictions", ["preset", "target_session"])
    op.create_index("ix_predictions_preset_as_of", "predictions", ["preset", "as_of"])


def downgrade() -> None:
    op.execute("DROP VIEW prediction_accuracy")
    for index in (
        "ix_predictions_preset_as_of",
        "ix_predictions_preset_target_session",
        "ix_predictions_ticker_target_session",
    ):
        op.drop_index(index, table_name="predictions")
    op.drop_table("predictions")
    op.drop_table("training_losses")
    op.drop_table("model_states")
    op.drop_table("run_failures")
    op.drop_index("ix_runs_started_at", table_name="runs")
    op.drop_table("runs")
    op.drop_table("prices")
