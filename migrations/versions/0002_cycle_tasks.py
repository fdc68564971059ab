"""cycle_tasks: the tickers of each cycle, claimed by workers with expiring leases.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cycle_tasks",
        sa.Column("preset", sa.String(32), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(255)),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("preset", "as_of", "ticker", name="pk_cycle_tasks"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_cycle_tasks_run_id_runs"),
        sa.CheckConstraint("status IN ('pending', 'leased', 'done', 'failed')", name="ck_cycle_tasks_status"),
    )


def downgrade() -> None:
    op.drop_table("cycle_tasks")
