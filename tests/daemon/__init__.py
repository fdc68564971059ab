"""forecaster.daemon: schedules, and the real `forecaster run` process: stops, health, leadership, outages, workers."""
