"""Alembic migrations of the forecaster schema; installed as the package forecaster.migrations."""
