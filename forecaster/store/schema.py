"""The tables, as SQLAlchemy Core objects. Migrations create them; this module mirrors them.

tests/store/test_migrations.py checks that a database migrated to head matches `metadata`
on SQLite and PostgreSQL, so a change here without a migration (or the reverse) fails.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

#: Constraint names are spelled out so later migrations (batch mode on SQLite) can address them.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware timestamp, stored in UTC and read back as UTC on both backends.

    SQLite keeps no offset, so an aware value would otherwise come back naive (and a
    naive one would be ambiguous): naive values are refused.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamp {value.isoformat()} has no timezone; pass an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


#: "fit" is left in the database's check constraint from the first schema, though no command
#: records it: dropping it would rebuild the runs table on SQLite, which its five referring
#: tables make unsafe inside the migration's transaction.
RUN_KINDS = ("daily", "backfill", "fit")
RUN_STATUSES = ("running", "ok", "partial", "failed", "interrupted")
#: fetch: the source call failed; prices: what it returned could not be stored yet, or the close
#: is not there yet (both retried, never given up); validate: too little history for a forecast;
#: train, write: the model or the database refused the ticker.
FAILURE_STAGES = ("fetch", "prices", "validate", "train", "write")

#: The longest source name the prices table keeps (a longer one keeps its end: store.prices).
SOURCE_LENGTH = 64

prices = sa.Table(
    "prices",
    metadata,
    sa.Column("ticker", sa.String(32), primary_key=True),
    sa.Column("session_date", sa.Date, primary_key=True),
    sa.Column("open", sa.Float),
    sa.Column("high", sa.Float),
    sa.Column("low", sa.Float),
    sa.Column("close", sa.Float, nullable=False),
    sa.Column("adj_close", sa.Float),
    sa.Column("volume", sa.Float),
    sa.Column("source", sa.String(SOURCE_LENGTH), nullable=False),
    sa.Column("fetched_at", UtcDateTime, nullable=False),
    sa.Index(None, "session_date"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("as_of", sa.Date),
    sa.Column("preset", sa.String(32)),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("tickers_ok", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("tickers_failed", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("tickers_skipped", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("error", sa.Text),
    sa.Column("host", sa.String(255)),
    sa.Column("calendar", sa.String(16)),  # the exchange calendar of the cycle's tickers and sessions
    #: tickers whose close of this session, or of an earlier one they still owe, is not there yet
    sa.Column("tickers_waiting", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.CheckConstraint(_one_of("kind", RUN_KINDS), name="kind"),
    sa.CheckConstraint(_one_of("status", RUN_STATUSES), name="status"),
    sa.Index(None, "started_at"),
)

run_failures = sa.Table(
    "run_failures",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("ticker", sa.String(32), primary_key=True),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.CheckConstraint(_one_of("stage", FAILURE_STAGES), name="stage"),
)

#: Warm-start checkpoints: one row per ticker, preset and trained day, never overwritten by a later
#: day; the latest few of each ticker are kept (forecaster.store.retention).
model_states = sa.Table(
    "model_states",
    metadata,
    sa.Column("ticker", sa.String(32), primary_key=True),
    sa.Column("preset", sa.String(32), primary_key=True),
    sa.Column("trained_through", sa.Date, primary_key=True),
    sa.Column("params", sa.JSON, nullable=False),  # {"w_f": float, ...}: the 12 named parameters
    sa.Column("optimizer_state", sa.JSON),  # {"step": int, "exp_avg": [12 floats], "exp_avg_sq": [12 floats]}
    sa.Column("config_hash", sa.String(64), nullable=False),  # the preset configuration it was trained with
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("interval_state", sa.JSON),  # forecaster.model.intervals' state after this session's forecast
)

#: The per-epoch loss curve of each ticker's latest fits (forecaster.store.retention); every
#: fit's first and last loss stay on its forecast (predictions.fit_*).
training_losses = sa.Table(
    "training_losses",
    metadata,
    sa.Column("ticker", sa.String(32), primary_key=True),
    sa.Column("preset", sa.String(32), primary_key=True),
    sa.Column("trained_through", sa.Date, primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),  # 1-based
    sa.Column("loss", sa.Float, nullable=False),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
)

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("ticker", sa.String(32), primary_key=True),
    sa.Column("preset", sa.String(32), primary_key=True),
    sa.Column("target_session", sa.Date, primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),  # the session whose close the forecast was made after
    sa.Column("predicted_close", sa.Float, nullable=False),
    sa.Column("last_close", sa.Float, nullable=False),  # the close on as_of: the naive forecast
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    # Prediction intervals of the target close at 80 % and 95 % (NULL for forecasts made without them).
    sa.Column("lower_80", sa.Float),
    sa.Column("upper_80", sa.Float),
    sa.Column("lower_95", sa.Float),
    sa.Column("upper_95", sa.Float),
    sa.Column("interval_method", sa.String(16)),  # how the bounds were made (see forecaster.model.intervals)
    # The fit that made the forecast: its epochs and its first and last epoch's mean loss. Kept
    # for good, while training_losses keeps whole curves of the latest fits only (store.retention).
    sa.Column("fit_epochs", sa.Integer),
    sa.Column("fit_first_loss", sa.Float),
    sa.Column("fit_last_loss", sa.Float),
    sa.Index(None, "preset", "target_session"),
    sa.Index(None, "preset", "as_of"),
    sa.Index(None, "run_id"),
)

TASK_STATUSES = ("pending", "leased", "done", "failed")

#: The tickers of each cycle still to be trained. Workers claim them with SELECT ... FOR UPDATE
#: SKIP LOCKED and a lease; a lease that expires (its worker died) makes the task claimable again.
cycle_tasks = sa.Table(
    "cycle_tasks",
    metadata,
    sa.Column("preset", sa.String(32), primary_key=True),
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("ticker", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("worker", sa.String(255)),  # host:pid of the worker holding (or last holding) the lease
    sa.Column("lease_expires_at", UtcDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),  # leases taken, stops excepted
    sa.Column("lease_id", sa.String(32)),  # the claim holding the task; only it may complete the task
    sa.Column("calendar", sa.String(16), nullable=False, server_default=sa.text("'XNYS'")),
    sa.CheckConstraint(_one_of("status", TASK_STATUSES), name="status"),
    sa.Index(None, "run_id"),
)

#: One row per forecast series: a ticker forecast under a preset from `first_as_of` on, every
#: session. Written once, when the ticker first joins the watch list, before any work on it.
forecast_series = sa.Table(
    "forecast_series",
    metadata,
    sa.Column("preset", sa.String(32), primary_key=True),
    sa.Column("ticker", sa.String(32), primary_key=True),
    sa.Column("first_as_of", sa.Date, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    #: the exchange calendar whose sessions the series owes forecasts from (forecaster.markets)
    sa.Column("calendar", sa.String(16), nullable=False, server_default=sa.text("'XNYS'")),
)

#: How far back the price source has been asked for each ticker, so that earlier history is
#: fetched once when a backfill needs it (and not again for a ticker the source has none of).
price_history = sa.Table(
    "price_history",
    metadata,
    sa.Column("ticker", sa.String(32), primary_key=True),
    sa.Column("requested_from", sa.Date, nullable=False),
)

PRICE_EVENT_KINDS = (
    "restatement",  # the source restated its history (a dividend or a split): stored closes rebased by `factor`
    "correction",  # a stored close the source now gives differently, not as one ratio: replaced
    "jump",  # a move beyond the jump threshold, confirmed by a second look and kept
    "unit_change",  # the source switched units (pence and pounds): the history before rebased by `factor`
    "gap",  # a session of the calendar with no close after the wait: forecast around
    "late",  # a session missing at an earlier fetch, filled in later
    "off_calendar",  # a close on a day the calendar calls a holiday: kept
    "stale",  # a zero-volume bar repeating the previous close on a session: kept, flagged
    "dividend",  # the source reported a dividend going ex (`factor`: cash per share)
    "split",  # the source reported a split (`factor`: the ratio, 2.0 for 2-for-1)
)

#: What the ingest saw happen to a ticker's prices, one row per (ticker, session, kind).
price_events = sa.Table(
    "price_events",
    metadata,
    sa.Column("ticker", sa.String(32), primary_key=True),
    sa.Column("session_date", sa.Date, primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),  # PRICE_EVENT_KINDS
    sa.Column("factor", sa.Float),
    sa.Column("detail", sa.Text, nullable=False),  # one line: what was seen and what the ingest did
    sa.Column("seen_at", UtcDateTime, nullable=False),
    sa.Index(None, "seen_at"),
)

#: Who schedules on a PostgreSQL database: one row per role (today only "scheduler"), held by the
#: process named in `holder` until `expires_at` (the database's clock) unless it renews it.
#: `epoch` grows by one at every change of holder, and every write only the holder may make
#: checks it in its own transaction (forecaster.store.scheduler_lease). SQLite does not use it.
scheduler_lease = sa.Table(
    "scheduler_lease",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),  # "<role> on <host> pid <pid> #<token>"
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("acquired_at", UtcDateTime, nullable=False),
    sa.Column("renewed_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

#: The view `prediction_accuracy` (created by the migrations, so not part of `metadata`):
#: every prediction with the realised close; the outcome columns are NULL until the close is known.
prediction_accuracy = sa.table(
    "prediction_accuracy",
    sa.column("ticker", sa.String),
    sa.column("preset", sa.String),
    sa.column("as_of", sa.Date),
    sa.column("target_session", sa.Date),
    sa.column("predicted_close", sa.Float),
    sa.column("last_close", sa.Float),
    sa.column(
        "actual_close", sa.Float
    ),  # the target close in the forecast's price basis: last · close(target) / close(as_of)
    sa.column("error", sa.Float),  # predicted - actual
    sa.column("abs_error", sa.Float),
    sa.column("pct_error", sa.Float),  # 100 * |predicted - actual| / actual
    sa.column("naive_error", sa.Float),  # last_close - actual
    sa.column("naive_abs_error", sa.Float),
    sa.column("direction_hit", sa.Integer),  # 1 when the forecast moved the way the close did, else 0
    sa.column("lower_80", sa.Float),
    sa.column("upper_80", sa.Float),
    sa.column("lower_95", sa.Float),
    sa.column("upper_95", sa.Float),
    sa.column("interval_method", sa.String),
    sa.column("covered_80", sa.Integer),  # 1 when the actual close fell inside the 80 % interval, else 0
    sa.column("covered_95", sa.Integer),
    sa.column("winkler_80", sa.Float),  # interval score: width + (2 / 0.2) · how far outside the close fell
    sa.column("winkler_95", sa.Float),  # width + (2 / 0.05) · how far outside
    sa.column("run_id", sa.Integer),
    sa.column("calendar", sa.String),  # the ticker's exchange calendar
)
