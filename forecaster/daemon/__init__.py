"""The daemon: APScheduler wiring, its jobs, which process schedules, and `forecaster status`."""
