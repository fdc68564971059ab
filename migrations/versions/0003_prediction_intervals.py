"""Prediction intervals: 80 % and 95 % bounds on every forecast, and their realised coverage in the view.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

The bounds are nullable: forecasts made before this revision have none. The view is
written out in full, as in 0001, so this revision keeps meaning what it means now.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BOUNDS = ("lower_80", "upper_80", "lower_95", "upper_95")

_PREDICTED_MOVE = (
    "CASE WHEN p.predicted_close > p.last_close THEN 1 WHEN p.predicted_close < p.last_close THEN -1 ELSE 0 END"
)
_ACTUAL_MOVE = "CASE WHEN a.close > p.last_close THEN 1 WHEN a.close < p.last_close THEN -1 ELSE 0 END"


def _covered(level: int) -> str:
    return f"""CASE
        WHEN a.close IS NULL OR p.lower_{level} IS NULL THEN NULL
        WHEN a.close >= p.lower_{level} AND a.close <= p.upper_{level} THEN 1
        ELSE 0
    END AS covered_{level}"""


def _winkler(level: int) -> str:
    """The interval score: width, plus 2/alpha times the distance by which the close fell outside."""
    penalty = 2.0 / (1.0 - level / 100.0)
    return f"""CASE
        WHEN a.close IS NULL OR p.lower_{level} IS NULL THEN NULL
        WHEN a.close < p.lower_{level} THEN p.upper_{level} - p.lower_{level} + {penalty} * (p.lower_{level} - a.close)
        WHEN a.close > p.upper_{level} THEN p.upper_{level} - p.lower_{level} + {penalty} * (a.close - p.upper_{level})
        ELSE p.upper_{level} - p.lower_{level}
    END AS winkler_{level}"""


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
    p.lower_80,
    p.upper_80,
    p.lower_95,
    p.upper_95,
    p.interval_method,
    {_covered(80)},
    {_covered(95)},
    {_winkler(80)},
    {_winkler(95)},
    p.run_id
FROM predictions AS p
LEFT JOIN prices AS a ON a.ticker = p.ticker AND a.session_date = p.target_session
"""


def upgrade() -> None:
    op.execute("DROP VIEW prediction_accuracy")
    for bound in BOUNDS:
        op.add_column("predictions", sa.Column(bound, sa.Float))
    op.add_column("predictions", sa.Column("interval_method", sa.String(16)))
    op.execute(PREDICTION_ACCURACY)


#: The view as revision 0001 created it (every column up to direction_hit, then run_id), restored by the downgrade.
_VIEW_0001 = (
    PREDICTION_ACCURACY.split("    p.lower_80,")[0]
    + "    p.run_id\nFROM predictions AS p\n"
    + PREDICTION_ACCURACY.split("FROM predictions AS p\n")[1]
)


def downgrade() -> None:
    op.execute("DROP VIEW prediction_accuracy")
    with op.batch_alter_table("predictions") as batch:
        for column in (*BOUNDS, "interval_method"):
            batch.drop_column(column)
    op.execute(_VIEW_0001)
