"""Markets and price events: each series on its own calendar, restatements recorded, forecasts scored in one basis.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

- forecast_series.calendar, runs.calendar, cycle_tasks.calendar: the exchange calendar of the
  ticker (series), of the cycle (runs, tasks). Everything stored before was on NYSE's.
- run_failures.stage gains 'prices': fetched prices that could not be stored this time or a
  close that is not there yet; like 'fetch', never counted toward giving a session up. The
  failures that said "no close for D" were counted before, and gave up sessions whose close
  had simply not been published yet: they become 'prices', so those sessions are owed again.
- price_events: what the ingest saw happen to a ticker's prices (restatements, corrections,
  confirmed jumps, gaps, late sessions, closes off the calendar, stale carries, unit changes,
  dividends and splits), one row per (ticker, session, kind).
- prices.session_date gets an index: the view's date-range queries no longer scan the table.
- prediction_accuracy: the realised close is taken in the forecast's own price basis,
  last_close · close(target) / close(as_of), both closes read now; a dividend or a split that
  restates the stored history after the forecast changes none of its scores. It also shows
  the ticker's calendar.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PREDICTED_MOVE = (
    "CASE WHEN q.predicted_close > q.last_close THEN 1 WHEN q.predicted_close < q.last_close THEN -1 ELSE 0 END"
)
_ACTUAL_MOVE = "CASE WHEN q.actual_close > q.last_close THEN 1 WHEN q.actual_close < q.last_close THEN -1 ELSE 0 END"


def _covered(level: int) -> str:
    return f"""CASE
        WHEN q.actual_close IS NULL OR q.lower_{level} IS NULL THEN NULL
        WHEN q.actual_close >= q.lower_{level} AND q.actual_close <= q.upper_{level} THEN 1
        ELSE 0
    END AS covered_{level}"""


def _winkler(level: int) -> str:
    """The interval score: width, plus 2/alpha times the distance by which the close fell outside."""
    penalty = 2.0 / (1.0 - level / 100.0)
    lower, upper, actual = f"q.lower_{level}", f"q.upper_{level}", "q.actual_close"
    return f"""CASE
        WHEN {actual} IS NULL OR {lower} IS NULL THEN NULL
        WHEN {actual} < {lower} THEN {upper} - {lower} + {penalty} * ({lower} - {actual})
        WHEN {actual} > {upper} THEN {upper} - {lower} + {penalty} * ({actual} - {upper})
        ELSE {upper} - {lower}
    END AS winkler_{level}"""


PREDICTION_ACCURACY = f"""
CREATE VIEW prediction_accuracy AS
SELECT
    q.ticker,
    q.preset,
    q.as_of,
    q.target_session,
    q.predicted_close,
    q.last_close,
    q.actual_close,
    q.predicted_close - q.actual_close AS error,
    ABS(q.predicted_close - q.actual_close) AS abs_error,
    100.0 * ABS(q.predicted_close - q.actual_close) / NULLIF(q.actual_close, 0) AS pct_error,
    q.last_close - q.actual_close AS naive_error,
    ABS(q.last_close - q.actual_close) AS naive_abs_error,
    CASE
        WHEN q.actual_close IS NULL THEN NULL
        WHEN ({_PREDICTED_MOVE}) = ({_ACTUAL_MOVE}) THEN 1
        ELSE 0
    END AS direction_hit,
    q.lower_80,
    q.upper_80,
    q.lower_95,
    q.upper_95,
    q.interval_method,
    {_covered(80)},
    {_covered(95)},
    {_winkler(80)},
    {_winkler(95)},
    q.run_id,
    q.calendar
FROM (
    SELECT
        p.ticker, p.preset, p.as_of, p.target_session, p.predicted_close, p.last_close,
        p.last_close * a.close / NULLIF(b.close, 0) AS actual_close,
        p.lower_80, p.upper_80, p.lower_95, p.upper_95, p.interval_method, p.run_id,
        s.calendar
    FROM predictions AS p
    LEFT JOIN prices AS a ON a.ticker = p.ticker AND a.session_date = p.target_session
    LEFT JOIN prices AS b ON b.ticker = p.ticker AND b.session_date = p.as_of
    LEFT JOIN forecast_series AS s ON s.preset = p.preset AND s.ticker = p.ticker
) AS q
"""

STAGES = "stage IN ('fetch', 'prices', 'validate', 'train', 'write')"
STAGES_0001 = "stage IN ('fetch', 'validate', 'train', 'write')"
#: The name 0001 gave the stage check (the naming convention prefixed it a second time).
STAGE_CHECK_0001 = "ck_run_failures_ck_run_failures_stage"


def upgrade() -> None:
    op.execute("DROP VIEW prediction_accuracy")
    for table, nullable in (("forecast_series", False), ("runs", True), ("cycle_tasks", False)):
        default = None if nullable else sa.text("'XNYS'")
        op.add_column(table, sa.Column("calendar", sa.String(16), nullable=nullable, server_default=default))
    op.execute("UPDATE runs SET calendar = 'XNYS'")
    op.add_column("runs", sa.Column("tickers_waiting", sa.Integer, nullable=False, server_default=sa.text("0")))
    with op.batch_alter_table("run_failures") as batch:
        batch.drop_constraint(op.f(STAGE_CHECK_0001), type_="check")
        batch.create_check_constraint(op.f("ck_run_failures_stage"), STAGES)
    op.execute("UPDATE run_failures SET stage = 'prices' WHERE stage = 'validate' AND reason LIKE 'no close for %'")
    op.create_table(
        "price_events",
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("session_date", sa.Date, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("factor", sa.Float),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticker", "session_date", "kind", name="pk_price_events"),
    )
    op.create_index("ix_price_events_seen_at", "price_events", ["seen_at"])
    op.create_index("ix_prices_session_date", "prices", ["session_date"])
    op.execute(PREDICTION_ACCURACY)


def downgrade() -> None:
    from importlib import import_module

    op.execute("DROP VIEW prediction_accuracy")
    op.drop_index("ix_prices_session_date", table_name="prices")
    op.drop_index("ix_price_events_seen_at", table_name="price_events")
    op.drop_table("price_events")
    op.execute("UPDATE run_failures SET stage = 'validate' WHERE stage = 'prices'")
    with op.batch_alter_table("run_failures") as batch:
        batch.drop_constraint(op.f("ck_run_failures_stage"), type_="check")
        batch.create_check_constraint(op.f(STAGE_CHECK_0001), STAGES_0001)
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("tickers_waiting")
    for table in ("cycle_tasks", "runs", "forecast_series"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("calendar")
    op.execute(import_module("forecaster.migrations.versions.0003_prediction_intervals").PREDICTION_ACCURACY)
