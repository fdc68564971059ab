"""forecaster.prices: price files, the checks on fetched prices, and (in sources/) every price source."""
