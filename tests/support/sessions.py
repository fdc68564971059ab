"""Sessions in tests: the daemon's catch-up walked one session at a time, and the latest session
closed now by the real clock (for tests that run the real commands at today's date)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from forecaster.calendar import trading_calendar
from forecaster.context import CycleContext
from forecaster.markets import settle_minutes
from forecaster.model.presets import PRESETS
from forecaster.prices.sources.base import PriceSource
from forecaster.walks import catch_up


def catch_up_daily(engine: sa.Engine, tickers: Sequence[str], source: PriceSource, sessions: Sequence[date]) -> None:
    """The daemon's catch-up after each of `sessions`' closes, in order (default preset)."""
    context = CycleContext(engine=engine, source=source, tickers=tickers, preset=PRESETS["default"])
    for session in sessions:
        catch_up(context, session)


def latest_closed_now(calendar: str) -> date:
    """The latest session of `calendar` whose close, plus its default settling delay, has passed."""
    settle = timedelta(minutes=settle_minutes(calendar, None))
    latest = trading_calendar(calendar).latest_closed_session(datetime.now(UTC), settle)
    assert latest is not None, f"{calendar} has no closed session"
    return latest
