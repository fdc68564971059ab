"""When the daemon runs: crontab strings as APScheduler triggers (read with crontab's meaning), the
trigger of a market's closes, and their fire times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from forecaster.calendar import trading_calendar
from forecaster.errors import UserError

_CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")  # crontab: 0 and 7 are Sunday


def _crontab_day_of_week(field: str) -> str:
    """A crontab day-of-week field in APScheduler's terms.

    APScheduler 3 numbers weekdays from Monday = 0, crontab from Sunday = 0, and
    `CronTrigger.from_crontab` passes numbers through unchanged ("1-5" would mean
    Tuesday to Saturday). Numbers, ranges and steps are spelled out as day names.
    """
    if not any(c.isdigit() for c in field):
        return field
    days: list[int] = []
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            low, high = (int(v) for v in span.split("-", 1))
        else:
            low = int(span)
            high = 6 if step else low
        if not (0 <= low <= high <= 7):
            raise ValueError(f"day of week {part!r} is out of 0-7")
        days += range(low, high + 1, int(step) if step else 1)
    return ",".join(dict.fromkeys(_CRON_WEEKDAYS[d] for d in days))


def cron_trigger(expression: str, timezone_name: str, *, setting: str = "schedule") -> CronTrigger:
    """A trigger from a crontab string: 5 fields (minute hour day month day-of-week, crontab's
    weekday numbers with Sunday = 0), or 6 with a leading seconds field. A bad string or zone,
    or a schedule that never fires (`0 0 31 2 *`), is a UserError naming the setting."""
    try:
        fields = expression.split()
        if len(fields) not in (5, 6):
            raise ValueError(f"expected 5 fields (or 6 with seconds first), got {len(fields)}")
        second = fields.pop(0) if len(fields) == 6 else "0"
        minute, hour, day, month, day_of_week = fields
        trigger = CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_crontab_day_of_week(day_of_week),
            timezone=timezone_name,
        )
    except (ValueError, KeyError, LookupError) as error:
        raise UserError(
            f"setting {setting}: {expression!r} in {timezone_name!r} is not a valid schedule ({error})"
        ) from None
    if next_fire_time(trigger, datetime.now(UTC)) is None:
        raise UserError(f"setting {setting}: {expression!r} never fires")
    return trigger


def next_fire_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    return trigger.get_next_fire_time(None, now)


def previous_fire_time(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The last time the trigger fired at or before `now`, looking back up to 14 days
    (APScheduler 3 only looks forward: walk from an hour, a day, then two weeks back)."""
    for lookback in (timedelta(hours=1), timedelta(days=1), timedelta(days=14)):
        fire, last = trigger.get_next_fire_time(None, now - lookback), None
        while fire is not None and fire <= now:
            last, fire = fire, trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        if last is not None:
            return last
    return None


class MarketCloseTrigger(BaseTrigger):
    """Fires after every session's close of a calendar, plus the time its prices take to settle:
    early closes and daylight-saving changes included, no fire on the market's holidays."""

    def __init__(self, calendar: str, settle: timedelta) -> None:
        self.calendar = calendar
        self.settle = settle

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        after = now - timedelta(microseconds=1) if previous_fire_time is None else max(previous_fire_time, now)
        return trading_calendar(self.calendar).next_close_after(after, self.settle)

    def __str__(self) -> str:
        return f"after each {self.calendar} close + {self.settle}"
