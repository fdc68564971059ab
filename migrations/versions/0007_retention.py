"""Retention: each forecast carries its fit's summary, so old loss curves and model states can go.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

- predictions.fit_epochs, fit_first_loss, fit_last_loss: the number of epochs of the fit that
  made the forecast and its first and last epoch's loss, kept with the forecast for good. Rows
  written before are filled from training_losses (NULL where it holds no curve for them).
- The index on predictions (ticker, target_session) is dropped: the primary key (ticker,
  preset, target_session) serves the same lookups, and the index cost about 30 bytes a row.

Nothing is deleted here: the cycle prunes each ticker it writes (forecaster.store.retention),
and `forecaster db prune` the whole database.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SAME_FIT = "l.ticker = predictions.ticker AND l.preset = predictions.preset AND l.trained_through = predictions.as_of"


def upgrade() -> None:
    op.add_column("predictions", sa.Column("fit_epochs", sa.Integer))
    op.add_column("predictions", sa.Column("fit_first_loss", sa.Float))
    op.add_column("predictions", sa.Column("fit_last_loss", sa.Float))
    op.execute(
        f"""
        UPDATE predictions SET
          fit_epochs = (SELECT max(l.epoch) FROM training_losses l WHERE {_SAME_FIT}),
          fit_first_loss = (SELECT l.loss FROM training_losses l WHERE {_SAME_FIT} AND l.epoch = 1),
          fit_last_loss = (
            SELECT l.loss FROM training_losses l WHERE {_SAME_FIT}
            ORDER BY l.epoch DESC LIMIT 1
          )
        """
    )
    op.drop_index("ix_predictions_ticker_target_session", table_name="predictions")


def downgrade() -> None:
    op.create_index("ix_predictions_ticker_target_session", "predictions", ["ticker", "target_session"])
    # SQLite rebuilds the table to drop a column, and refuses to while a view names it: the view
    # goes and comes back as it was (PostgreSQL drops columns the view does not use in place).
    sqlite = op.get_bind().dialect.name == "sqlite"
    view = op.get_bind().execute(sa.text(_VIEW_SQL)).scalar_one() if sqlite else None
    if view is not None:
        op.execute("DROP VIEW prediction_accuracy")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("fit_last_loss")
        batch.drop_column("fit_first_loss")
        batch.drop_column("fit_epochs")
    if view is not None:
        op.execute(view)


_VIEW_SQL = "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'prediction_accuracy'"
