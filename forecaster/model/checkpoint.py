"""A ticker's checkpoint: everything its fit through one session leaves for the next session's warm start.

The 12 parameters, Adam's state (step and both moments), the prediction intervals' state
(forecaster.model.intervals) and the hash of the preset configuration that trained it (a
checkpoint warm-starts only the same configuration). `encode` gives the values the
model_states table stores (JSON objects); `decode` reads them back and refuses anything it
cannot trust, so a corrupt row costs its ticker a refit, never the cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from forecaster.model.cell import N_PARAMETERS, initial_params, params_from_dict, params_to_dict
from forecaster.model.presets import Preset
from forecaster.model.training import AdamState


class UnreadableCheckpoint(ValueError):
    """A stored checkpoint that cannot be decoded or trusted; the message says why."""


@dataclass(frozen=True)
class Checkpoint:
    trained_through: date
    config_hash: str  # the preset configuration that trained it
    params: np.ndarray  # (12,) float64, in cell.PARAMETER_NAMES order
    adam_step: int
    exp_avg: np.ndarray  # (12,)
    exp_avg_sq: np.ndarray  # (12,)
    interval_state: dict[str, Any] | None  # the interval method's JSON state (None: start it afresh)

    def encode(self) -> dict[str, Any]:
        """The model_states columns: params, optimizer_state and interval_state (JSON) and config_hash."""
        return {
            "params": params_to_dict(self.params),
            "optimizer_state": {
                "step": self.adam_step,
                "exp_avg": [float(v) for v in self.exp_avg],
                "exp_avg_sq": [float(v) for v in self.exp_avg_sq],
            },
            "interval_state": self.interval_state,
            "config_hash": self.config_hash,
        }

    @classmethod
    def decode(
        cls,
        trained_through: date,
        *,
        params: Any,
        optimizer_state: Any,
        interval_state: Any,
        config_hash: str,
    ) -> Checkpoint:
        """The checkpoint of stored columns (already parsed from JSON); UnreadableCheckpoint when
        the parameters or Adam's state are missing, malformed or out of range. An interval state
        that is not a JSON object is dropped: only the intervals restart, from their fallback."""
        try:
            if not isinstance(params, Mapping):
                raise TypeError("parameters are not a JSON object")
            row = params_from_dict(params)
            if not np.all(np.isfinite(row)):
                raise ValueError("non-finite parameters")
            step, exp_avg, exp_avg_sq = _adam(optimizer_state)
        except (KeyError, TypeError, ValueError) as error:
            raise UnreadableCheckpoint(str(error)) from None
        return cls(
            trained_through=trained_through,
            config_hash=config_hash,
            params=row,
            adam_step=step,
            exp_avg=exp_avg,
            exp_avg_sq=exp_avg_sq,
            interval_state=interval_state if isinstance(interval_state, dict) else None,
        )


def _adam(state: Any) -> tuple[int, np.ndarray, np.ndarray]:
    if state is None:  # a checkpoint stored without Adam's state: Adam starts afresh from its weights
        return 0, np.zeros(N_PARAMETERS), np.zeros(N_PARAMETERS)
    if not isinstance(state, Mapping):
        raise TypeError("optimizer state is not a JSON object")
    step = state["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"optimizer step {step!r} is not a count")
    exp_avg = np.array(state["exp_avg"], dtype=np.float64)
    exp_avg_sq = np.array(state["exp_avg_sq"], dtype=np.float64)
    if exp_avg.shape != (N_PARAMETERS,) or exp_avg_sq.shape != (N_PARAMETERS,):
        raise ValueError(f"optimizer moments of shape {exp_avg.shape} and {exp_avg_sq.shape}, expected (12,)")
    if not (np.all(np.isfinite(exp_avg)) and np.all(np.isfinite(exp_avg_sq)) and np.all(exp_avg_sq >= 0)):
        raise ValueError("optimizer state out of range")
    return step, exp_avg, exp_avg_sq


def refit_reason(checkpoint: Checkpoint, preset: Preset) -> str | None:
    """Why `checkpoint` cannot warm-start `preset` (None when it can)."""
    if checkpoint.config_hash != preset.config_hash:
        return f"it is from another configuration of preset {preset.name}"
    return None


def starting_point(warm: Sequence[Checkpoint | None], preset: Preset) -> tuple[np.ndarray, AdamState]:
    """Parameters (tickers, 12) and Adam's state to train a chunk from: each checkpoint's, and the
    notebook's starting weights with a fresh Adam where there is none. Adam's state is carried
    only by a preset that carries it."""
    params = initial_params(len(warm))
    adam = AdamState.fresh(len(warm))
    for k, checkpoint in enumerate(warm):
        if checkpoint is None:
            continue
        params[k] = checkpoint.params
        if preset.carry_optimizer_state:
            adam.step[k], adam.exp_avg[k], adam.exp_avg_sq[k] = (
                checkpoint.adam_step,
                checkpoint.exp_avg,
                checkpoint.exp_avg_sq,
            )
    return params, adam


def checkpoints_after(
    preset: Preset,
    trained_through: Sequence[date | None],
    params: np.ndarray,
    adam: AdamState,
    interval_states: Sequence[dict[str, Any] | None],
) -> list[Checkpoint]:
    """One checkpoint per row of a chunk's trained parameters (tickers, 12) and Adam's state,
    each trained through its row's latest close."""
    checkpoints = []
    for k, through in enumerate(trained_through):
        assert through is not None, "a trained row has closes"
        checkpoints.append(
            Checkpoint(
                trained_through=through,
                config_hash=preset.config_hash,
                params=params[k].copy(),
                adam_step=int(adam.step[k]),
                exp_avg=adam.exp_avg[k].copy(),
                exp_avg_sq=adam.exp_avg_sq[k].copy(),
                interval_state=interval_states[k],
            )
        )
    return checkpoints
