"""The scheduler's watch on overdue markets: an alert when a market's forecast due by now is missing
(as `forecaster status` reckons it: forecaster.daemon.health.missing_forecast), once per market and
missed session, and a line when the market is on time again. The scheduler runs the check every
few minutes (forecaster.daemon.scheduler.WATCH_SECONDS).

What was said is held in memory: a restarted daemon, or another process taking over the scheduler,
says an overdue market once more."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime

import sqlalchemy as sa

from forecaster.config import Settings
from forecaster.context import utc_now
from forecaster.daemon.health import missing_forecast
from forecaster.errors import one_line
from forecaster.notify import Notifier
from forecaster.store import predictions as prediction_store

log = logging.getLogger(__name__)


class OverdueWatch:
    def __init__(
        self, engine: sa.Engine, settings: Settings, notifier: Notifier, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.engine, self.settings, self.notifier, self.clock = engine, settings, notifier, clock
        self._calendars = list(dict.fromkeys(settings.markets.values()))
        self._said: dict[str, date] = {}  # calendar -> the missed session its alert named

    def check(self) -> None:
        """Alerts for each market newly overdue, or overdue for a later session than it was said to be;
        says when one that was is on time again. A database that cannot be read is left to the forecast
        job to say."""
        now = self.clock()
        try:
            with self.engine.connect() as connection:
                made = {
                    c: prediction_store.latest_as_of(self.settings.preset, connection=connection, calendar=c)
                    for c in self._calendars
                }
        except sa.exc.SQLAlchemyError as error:
            log.debug("overdue check: database unreadable (%s)", one_line(error))
            return
        for calendar, latest in made.items():
            missing = missing_forecast(self.settings, calendar, latest, now)
            if missing is not None and self._said.get(calendar) != missing:
                self._said[calendar] = missing
                self.notifier.alert(
                    f"{calendar} OVERDUE: the forecast from session {missing} is missing "
                    f"(the latest made is from {latest or 'none'})"
                )
            elif missing is None and calendar in self._said:
                del self._said[calendar]
                self.notifier.resolved(f"{calendar} on time again: the latest forecast is from session {latest}")
