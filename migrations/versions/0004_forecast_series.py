"""Forecast series and fenced task leases: what a catch-up owes never depends on where a run stopped.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

- forecast_series: each (preset, ticker) with the first session it is forecast from, filled
  here from the forecasts already made (a series starts at its earliest forecast).
- price_history: how far back the source was asked for each ticker, filled from the earliest
  stored close.
- cycle_tasks.lease_id: the claim that holds a task; tasks of runs that have ended are dropped.
- indexes on predictions.run_id and cycle_tasks.run_id, for counting and ending a run.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "forecast_series",
        sa.Column("preset", sa.String(32), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("first_as_of", sa.Date, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("preset", "ticker", name="pk_forecast_series"),
    )
    op.execute(
        "INSERT INTO forecast_series (preset, ticker, first_as_of, created_at) "
        "SELECT preset, ticker, min(as_of), min(created_at) FROM predictions GROUP BY preset, ticker"
    )
    op.create_table(
        "price_history",
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("requested_from", sa.Date, nullable=False),
        sa.PrimaryKeyConstraint("ticker", name="pk_price_history"),
    )
    op.execute(
        "INSERT INTO price_history (ticker, requested_from) "
        "SELECT ticker, min(session_date) FROM prices GROUP BY ticker"
    )
    op.add_column("cycle_tasks", sa.Column("lease_id", sa.String(32)))
    op.execute("DELETE FROM cycle_tasks WHERE run_id NOT IN (SELECT id FROM runs WHERE status = 'running')")
    op.create_index("ix_cycle_tasks_run_id", "cycle_tasks", ["run_id"])
    op.create_index("ix_predictions_run_id", "predictions", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_predictions_run_id", table_name="predictions")
    op.drop_index("ix_cycle_tasks_run_id", table_name="cycle_tasks")
    with op.batch_alter_table("cycle_tasks") as batch:
        batch.drop_column("lease_id")
    op.drop_table("price_history")
    op.drop_table("forecast_series")
