"""forecaster: a scheduled daily forecasting job with a tiny LSTM per ticker."""

__version__ = "0.1.0"
