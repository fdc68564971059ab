"""forecaster.cycle and forecaster.worker, in-process: the daily cycle, catch-up, warm starts, and claims."""
