"""forecaster.cli and forecaster.config: commands, settings, bad input, secrets, and fuzzed input."""
