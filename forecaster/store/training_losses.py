"""The training_losses table: the per-epoch loss curve of each ticker's fit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
import sqlalchemy as sa

from forecaster.store.bulk import insert_frame
from forecaster.store.schema import training_losses

#: Epochs whose loss is stored: every one of the first 10 (all of a daily warm-start fit), then
#: every 10th and the last. A first fit of 1,000 epochs stores 109 rows instead of 1,000: the
#: curve's shape, at a tenth of the rows (5,000 new tickers would otherwise write 5 million).
LOSSES_KEPT_WHOLE = 10
LOSS_EVERY = 10


def stored_epochs(epochs: int) -> list[int]:
    """The 1-based epochs of a fit of `epochs` whose loss is stored."""
    return [e for e in range(1, epochs + 1) if e <= LOSSES_KEPT_WHOLE or e % LOSS_EVERY == 0 or e == epochs]


@dataclass(frozen=True)
class LossCurve:
    """The mean batch loss of each epoch of one fit (epoch 1 first)."""

    ticker: str
    preset: str
    trained_through: date
    losses: np.ndarray  # (epochs,)
    run_id: int


def replace_losses(curves: Sequence[LossCurve], *, connection: sa.Connection) -> None:
    """Stores loss curves, each replacing the whole curve stored for the same fit (ticker, preset,
    trained_through), so a rerun with fewer epochs leaves no stale epochs behind; of a long fit,
    the epochs of `stored_epochs` are kept."""
    if not curves:
        return
    connection.execute(
        training_losses.delete().where(
            training_losses.c.ticker == sa.bindparam("key_ticker"),
            training_losses.c.preset == sa.bindparam("key_preset"),
            training_losses.c.trained_through == sa.bindparam("key_trained_through"),
        ),
        [{"key_ticker": c.ticker, "key_preset": c.preset, "key_trained_through": c.trained_through} for c in curves],
    )
    kept = [np.array(stored_epochs(len(c.losses)), dtype=np.int64) for c in curves]
    curve_of_row = np.repeat(np.arange(len(curves)), [len(epochs) for epochs in kept])  # (rows,)
    frame = pl.DataFrame(
        {
            "ticker": pl.Series([c.ticker for c in curves], dtype=pl.String).gather(curve_of_row),
            "preset": pl.Series([c.preset for c in curves], dtype=pl.String).gather(curve_of_row),
            "trained_through": pl.Series([c.trained_through for c in curves], dtype=pl.Date).gather(curve_of_row),
            "epoch": np.concatenate(kept),
            "loss": np.concatenate(
                [np.asarray(c.losses, dtype=np.float64)[e - 1] for c, e in zip(curves, kept, strict=True)]
            ),
            "run_id": np.array([c.run_id for c in curves], dtype=np.int64)[curve_of_row],
        }
    )
    insert_frame(connection, training_losses, frame)
