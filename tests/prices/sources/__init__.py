"""forecaster.prices.sources: the yahoo, csv, synthetic and retrying sources, and the spec that picks one."""
