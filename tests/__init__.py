"""The specification of forecaster, in folders that mirror the package (tests/support: shared helpers and fakes)."""
