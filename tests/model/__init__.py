"""forecaster.model: the cell, the batched trainer, the presets, the prediction intervals, and what they learn."""
