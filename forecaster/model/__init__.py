"""The model: the notebook's LSTM cell, its compiled training, presets, lag windows and forecasts."""
