"""Retention: the model states and loss curves kept per ticker, and the pruning of the rest.

A warm start reads only a ticker's latest state, and a reader of the losses wants the recent
curves; every fit's first and last loss stay on its forecast (predictions.fit_*). So each
(ticker, preset) keeps its `states` latest model states and the whole curves of its
`loss_curves` latest fits; forecasts, prices, runs and failures are kept for good.

The cycle prunes the tickers it writes, in the transaction that writes them, counting back from
the session written: a state newer than that session is never touched, and the one just
written stays, so a backfill of an earlier period keeps the state its next session warm-starts
from. `prune_database` does every ticker at once (`forecaster db prune`), under the scheduler
lock, for tickers that left the watch list and for databases written before retention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from forecaster.store.schema import model_states, training_losses


@dataclass(frozen=True)
class Retention:
    states: int  # model states kept per ticker and preset, the latest
    loss_curves: int  # per-epoch loss curves kept per ticker and preset, of the latest fits

    def __post_init__(self) -> None:
        if self.states < 1 or self.loss_curves < 1:
            raise ValueError(f"keep at least one state and one loss curve, not {self}")


@dataclass(frozen=True)
class Pruned:
    states: int  # model_states rows deleted
    loss_rows: int  # training_losses rows deleted


def prune_written(fits: Sequence[tuple[str, str, date]], retention: Retention, *, connection: sa.Connection) -> None:
    """For each fit just written, (ticker, preset, trained_through): deletes that ticker's states
    and loss curves older than its `retention` latest ones trained through that session or before."""
    if not fits:
        return
    keys = [{"key_ticker": t, "key_preset": p, "key_through": d} for t, p, d in fits]
    for table, kept in ((model_states, retention.states), (training_losses, retention.loss_curves)):
        older = table.c.trained_through < _oldest_kept(table, kept)
        connection.execute(
            table.delete().where(
                table.c.ticker == sa.bindparam("key_ticker"), table.c.preset == sa.bindparam("key_preset"), older
            ),
            keys,
        )


def _one_row_per_fit(table: sa.FromClause) -> list[sa.ColumnElement[bool]]:
    """A loss curve has a row per stored epoch; its epoch-1 row stands for the fit."""
    return [table.c.epoch == 1] if "epoch" in table.c else []


def _oldest_kept(table: sa.Table, kept: int) -> sa.ScalarSelect[date]:
    """The trained_through of the `kept`-th latest fit of the bound series at or before the bound
    session (NULL when it has fewer: then no row compares older)."""
    fits = table.alias("kept")
    return (
        sa.select(fits.c.trained_through)
        .where(
            fits.c.ticker == sa.bindparam("key_ticker"),
            fits.c.preset == sa.bindparam("key_preset"),
            fits.c.trained_through <= sa.bindparam("key_through"),
            *_one_row_per_fit(fits),
        )
        .order_by(fits.c.trained_through.desc())
        .limit(1)
        .offset(kept - 1)
        .scalar_subquery()
    )


def prune_database(retention: Retention, *, connection: sa.Connection) -> Pruned:
    """Deletes, for every (ticker, preset), the states and loss curves beyond its `retention` latest."""
    deleted = [
        connection.execute(table.delete().where(_key(table).in_(_beyond(table, kept)))).rowcount
        for table, kept in ((model_states, retention.states), (training_losses, retention.loss_curves))
    ]
    return Pruned(*deleted)


def _key(table: sa.Table) -> sa.Tuple:
    return sa.tuple_(table.c.ticker, table.c.preset, table.c.trained_through)


def _beyond(table: sa.Table, kept: int) -> sa.Select:
    """The (ticker, preset, trained_through) of each series' fits after its `kept` latest."""
    c = table.c
    rank = sa.func.row_number().over(partition_by=(c.ticker, c.preset), order_by=c.trained_through.desc())
    fits = (
        sa.select(c.ticker, c.preset, c.trained_through, rank.label("rank")).where(*_one_row_per_fit(table)).subquery()
    )
    return sa.select(fits.c.ticker, fits.c.preset, fits.c.trained_through).where(fits.c.rank > kept)
