"""Named training configurations: `seed` is the notebook exactly, `default` is our best."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

from forecaster.errors import UserError

Scaling = Literal["none", "last_close"]


@dataclass(frozen=True)
class Preset:
    """Everything that decides what a model learns. A stored model state is only reused
    by a preset with the same `config_hash`."""

    name: str
    lags: int  # closes fed to the cell, x_1 (the latest) first
    scaling: Scaling  # "last_close": each sample's inputs and target divided by its x_1
    learning_rate: float  # Adam
    batch_size: int  # consecutive samples per optimizer step, in date order
    epochs_first_fit: int  # epochs when a ticker has no stored state
    epochs_per_session: int  # epochs of each daily warm-start fit
    window: int  # training samples (target sessions) per fit
    carry_optimizer_state: bool  # warm start keeps Adam's moments and step, else resets them

    @property
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
    "default": Preset(
        name="default",
        lags=4,
        scaling="last_close",
        learning_rate=3e-3,
        batch_size=32,
        epochs_first_fit=1000,
        epochs_per_session=10,
        window=252,
        carry_optimizer_state=True,
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
