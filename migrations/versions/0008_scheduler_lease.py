"""The scheduler lock as a lease row with a fencing epoch, so leadership holds behind a pooler.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

A session advisory lock means nothing behind PgBouncer in transaction pooling mode (each
transaction may run on another server connection) and vanishes with its connection. The
scheduler now holds a row of `scheduler_lease` that it renews in short transactions, and every
write only the scheduler may make checks the row's epoch in its own transaction
(forecaster.store.scheduler_lease). SQLite keeps its file lock; the table is made there too so
both backends have one schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_scheduler_lease"),
    )


def downgrade() -> None:
    op.drop_table("scheduler_lease")
