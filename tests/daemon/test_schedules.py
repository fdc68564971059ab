"""Schedules are crontab strings, read with crontab's meaning (Sunday = 0), in the configured zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from forecaster.daemon.schedules import cron_trigger, previous_fire_time
from forecaster.errors import UserError

NEW_YORK = ZoneInfo("America/New_York")


def test_the_default_schedule_fires_at_18_30_new_york_monday_to_friday():
    trigger = cron_trigger("30 18 * * 1-5", "America/New_York")
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=NEW_YORK)

    fire = trigger.get_next_fire_time(None, saturday)

    assert fire == datetime(2026, 11, 30, 18, 30, tzinfo=NEW_YORK)  # Monday, not Tuesday


@pytest.mark.parametrize(
    ("day_of_week", "first_fire_day"),
    [("0", 29), ("7", 29), ("6", 28), ("*/2", 28), ("1-5/2", 30), ("1,3", 30), ("mon-fri", 30), ("*", 28)],
)
def test_weekday_numbers_mean_what_they_mean_in_crontab(day_of_week, first_fire_day):
    trigger = cron_trigger(f"0 9 * * {day_of_week}", "America/New_York")

    fire = trigger.get_next_fire_time(None, datetime(2026, 11, 28, 0, 0, tzinfo=NEW_YORK))  # a Saturday

    assert fire.day == first_fire_day


def test_the_previous_fire_time_is_the_last_one_at_or_before_now():
    trigger = cron_trigger("30 18 * * 1-5", "America/New_York")

    assert previous_fire_time(trigger, datetime(2026, 11, 29, 12, 0, tzinfo=NEW_YORK)) == datetime(
        2026, 11, 27, 18, 30, tzinfo=NEW_YORK
    )


@pytest.mark.parametrize("expression", ["30 18 * *", "61 18 * * 1-5", "30 18 * * 9", "every day", ""])
def test_a_bad_schedule_is_a_user_error_naming_the_setting(expression):
    with pytest.raises(UserError, match="setting schedule"):
        cron_trigger(expression, "America/New_York")


def test_an_unknown_time_zone_is_a_user_error():
    with pytest.raises(UserError, match="Mars/Olympus"):
        cron_trigger("30 18 * * 1-5", "Mars/Olympus")
