"""Named training configurations: `seed` is the notebook exactly, `default` is our best."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Literal

from forecaster.errors import UserError

#: How closes become the cell's inputs and target (see forecasting._scaled):
#:   "none": raw closes (the notebook); "last_close": each sample's closes divided by its x_1;
#:   "log_return_pct": 100 · log(close / previous close), so `lags` closes give lags − 1 returns
#:   and the target is the next session's return in percent.
Scaling = Literal["none", "last_close", "log_return_pct"]
Activation = Literal["relu", "tanh"]
Loss = Literal["mse", "mae"]


@dataclass(frozen=True)
class Preset:
    """Everything that decides what a model learns. A stored model state is only reused
    by a preset with the same `config_hash`."""

    name: str
    lags: int  # closes per sample, x_1 (the latest) first; the cell sees lags − 1 returns under "log_return_pct"
    scaling: Scaling
    learning_rate: float  # Adam
    batch_size: int  # consecutive samples per optimizer step, in date order
    epochs_first_fit: int  # epochs when a ticker has no stored state
    epochs_per_session: int  # epochs of each daily warm-start fit
    window: int  # training samples (target sessions) per fit
    carry_optimizer_state: bool  # warm start keeps Adam's moments and step, else resets them
    activation: Activation = "relu"  # the cell's candidate and output activation: relu (notebook) or tanh
    loss: Loss = "mse"  # per-sample training loss: squared (notebook) or absolute error
    weight_decay: float = 0.0  # torch Adam's L2 term on all 12 parameters (0: none, the notebook)

    @cached_property
    def config_hash(self) -> str:
        encoded = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(encoded).hexdigest()[:16]


PRESETS: dict[str, Preset] = {
    "seed": Preset(
        name="seed",
        lags=4,
        scaling="none",
        learning_rate=1e-4,
        batch_size=40,
        epochs_first_fit=2000,
        epochs_per_session=20,
        window=252,
        carry_optimizer_state=True,
    ),
    # Tuned out of sample (benchmarks/accuracy.py): daily log returns in percent, tanh so the
    # forecast can go down, absolute-error loss because MAE is the score, and weight decay that
    # keeps the 12 weights small, since real daily returns carry little signal and an unshrunk
    # cell fits noise (MAE 0.3-1 % worse than naive on the tuning spans without it).
    "default": Preset(
        name="default",
        lags=5,  # 5 closes: the cell sees the 4 latest daily returns
        scaling="log_return_pct",
        learning_rate=1e-4,
        batch_size=32,
        epochs_first_fit=1000,
        epochs_per_session=10,
        window=252,
        carry_optimizer_state=True,
        activation="tanh",
        loss="mae",
        weight_decay=0.03,
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
