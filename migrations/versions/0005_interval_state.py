"""model_states.interval_state: what the interval method carries from one session to the next.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

A ticker's last standardised forecast errors and its pending forecast (see
forecaster.model.intervals), stored with the model state it belongs to; NULL for states
written before this revision, whose tickers start their intervals from the fallback.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("model_states", sa.Column("interval_state", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("model_states") as batch:
        batch.drop_column("interval_state")
