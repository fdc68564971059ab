"""The daemon's notifications, received by a real HTTP server on 127.0.0.1 (apprise's json://).

The report job sends the briefing with the HTML report attached, then each of the report's alerts;
a report that cannot be written is an alert. A run that ends with failed tickers is one alert
naming its market, session, counts and first failures; a forecast job that loses its database is
one alert. An overdue market is one alert per missed session, and one line when it is on time
again. A real daemon sends the briefing, the overdue alert and a failed run's alert, and never
logs the URL's secret. Storage tests run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from forecaster.calendar import NYSE, trading_calendar
from forecaster.config import Settings
from forecaster.context import CycleContext
from forecaster.daemon.jobs import forecast_job_as_scheduler, report_job, send_report
from forecaster.daemon.overdue import OverdueWatch
from forecaster.model.presets import PRESETS
from forecaster.notify import ALERT_TITLE, RESOLVED_TITLE, Notifier
from forecaster.report.data import NAMED_GROUP
from forecaster.report.writer import WrittenReport
from forecaster.retries import Backoff
from tests.support.fakes import UNKNOWN_TICKER, FaultySource
from tests.support.processes import forecaster_env, forecaster_running, run_forecaster, stop_forecaster, wait_for
from tests.support.receiver import Received, Receiver, receiving
from tests.support.sessions import catch_up_daily, latest_closed_now

FAST = Backoff(retries=2, first_delay=0.01)
NO_RETRY = Backoff(retries=0, first_delay=0)
MON, TUE, WED, THU = date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6), date(2024, 3, 7)


def _noon_after(day: date) -> datetime:
    """Noon UTC of the day after `day`: its close has settled and the grace time has passed."""
    return datetime(day.year, day.month, day.day + 1, 12, tzinfo=UTC)


@pytest.fixture
def no_settings_variables(monkeypatch) -> None:
    for name in [n for n in os.environ if n.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)


# --- the report job -------------------------------------------------------------------------------


def test_the_report_job_sends_the_briefing_with_the_html_report_attached(migrated_engine, tmp_path):
    catch_up_daily(migrated_engine, ["AAA", "BBB"], FaultySource(seed=3), [MON, TUE])

    with receiving() as receiver, Notifier([receiver.url()], backoff=FAST) as notifier:
        paths = report_job(migrated_engine, "default", tmp_path / "reports", delisted_after=5, notifier=notifier)
        (briefing,) = receiver.wait_for(1)

    html = tmp_path / "reports" / "report-2024-03-05.html"
    assert html in paths
    assert (briefing.title, briefing.type) == ("Forecast report 2024-03-05 (preset default)", "info")
    assert "Forecasts made after the close of 2024-03-05" in briefing.message
    assert "<img" not in briefing.message and "![" not in briefing.message, "the briefing has no images"
    assert briefing.attachments == {html.name: html.read_bytes()}
    assert len(receiver.received) == 1, "the report raised no alert"


def test_the_report_job_charts_the_tickers_the_settings_name(migrated_engine, tmp_path):
    catch_up_daily(migrated_engine, ["AAA", "BBB"], FaultySource(seed=3), [MON, TUE])

    with Notifier([]) as notifier:
        report_job(migrated_engine, "default", tmp_path, delisted_after=5, notifier=notifier, named=["BBB"])

    assert f"<h3>{NAMED_GROUP}</h3>" in (tmp_path / "report-2024-03-05.html").read_text()


def test_each_alert_of_the_report_is_a_notification_of_its_own_after_the_briefing(tmp_path):
    html = tmp_path / "report-2024-03-05.html"
    html.write_text("<html>the whole report</html>")
    written = WrittenReport(
        paths=[tmp_path / "report-2024-03-05.md", html],
        title="Forecast report 2024-03-05 (preset default)",
        briefing="# Forecast report 2024-03-05 (preset default)\n\nForecasts made after the close of 2024-03-05.",
        alerts=["80 % coverage 61 % over the latest 20 sessions", "95 % coverage 80 % over the latest 20 sessions"],
    )

    with receiving() as receiver, Notifier([receiver.url()], backoff=FAST) as notifier:
        send_report(notifier, written)
        briefing, *alerts = receiver.wait_for(3)

    assert briefing.title == written.title and briefing.attachments == {html.name: b"<html>the whole report</html>"}
    assert [(a.title, a.type, a.message) for a in alerts] == [(ALERT_TITLE, "failure", line) for line in written.alerts]


def test_a_report_that_cannot_be_written_is_an_alert_with_the_cause_the_log_gives(migrated_engine, tmp_path, caplog):
    with receiving() as receiver, Notifier([receiver.url()], backoff=FAST) as notifier:
        assert report_job(migrated_engine, "default", tmp_path, delisted_after=5, notifier=notifier) == []
        (alert,) = receiver.wait_for(1)

    (logged,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("report job failed: ")]
    assert alert.type == "failure"
    assert alert.message == "the daily report could not be written: " + logged.removeprefix("report job failed: ")
    assert "UserError: no forecasts" in alert.message, "an empty database: nothing to report"


# --- the forecast job -----------------------------------------------------------------------------

FAILING = ["FA", "FB", "FC", "FD", "FE", "FF", "FG"]


def test_a_run_with_failed_tickers_is_one_alert_naming_its_market_session_counts_and_first_failures(migrated_engine):
    context = CycleContext(
        engine=migrated_engine,
        source=FaultySource(seed=3, failing=FAILING),
        tickers=["AAA", *FAILING],
        preset=PRESETS["default"],
    )
    context.clock = lambda: _noon_after(TUE)

    with receiving() as receiver, Notifier([receiver.url()], backoff=FAST) as notifier:
        forecast_job_as_scheduler(context, NO_RETRY, trigger="the trigger at 2024-03-06T12:00", notifier=notifier)
    with migrated_engine.connect() as connection:
        run_id = connection.execute(sa.text("SELECT id FROM runs")).scalar_one()

    (alert,) = receiver.received
    assert alert.message == (
        f"XNYS session {TUE}: run {run_id} partial, 7 of 8 ticker(s) failed: FA, FB, FC, FD, FE and 2 more "
        f"(FA at fetch: {UNKNOWN_TICKER})"
    )


def test_a_run_without_failures_is_no_alert(migrated_engine):
    context = CycleContext(
        engine=migrated_engine, source=FaultySource(seed=3), tickers=["AAA"], preset=PRESETS["default"]
    )
    context.clock = lambda: _noon_after(TUE)

    with receiving() as receiver, Notifier([receiver.url()], backoff=FAST) as notifier:
        forecast_job_as_scheduler(context, NO_RETRY, trigger="a test", notifier=notifier)

    assert receiver.received == []


def test_a_forecast_job_that_cannot_reach_its_database_is_an_alert_with_the_cause(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'no-such-directory' / 'forecaster.db'}")
    context = CycleContext(engine=engine, source=FaultySource(), tickers=["AAA"], preset=PRESETS["default"])

    with receiving() as receiver, Notifier([receiver.url()], backoff=FAST) as notifier:
        forecast_job_as_scheduler(
            context, NO_RETRY, trigger="after each XNYS close", notifier=notifier, calendars=["XNYS"]
        )
    engine.dispose()

    (alert,) = receiver.received
    assert alert.message == (
        "forecast job of XNYS (after each XNYS close) failed: "
        "database unavailable (OperationalError: unable to open database file)"
    )


# --- overdue markets ------------------------------------------------------------------------------


def test_an_overdue_market_is_one_alert_per_missed_session_and_a_line_once_on_time_again(
    migrated_engine, no_settings_variables
):
    catch_up_daily(migrated_engine, ["AAA"], FaultySource(seed=3), [MON])
    now = [_noon_after(TUE)]

    with receiving() as receiver, Notifier([receiver.url()], backoff=FAST) as notifier:
        watch = OverdueWatch(migrated_engine, Settings(tickers="AAA"), notifier, clock=lambda: now[0])
        watch.check()
        watch.check()  # still the same session missing: said already
        now[0] = _noon_after(WED)
        watch.check()  # another session missed
        catch_up_daily(migrated_engine, ["AAA"], FaultySource(seed=3), [TUE, WED])
        watch.check()
        watch.check()
        receiver.wait_for(3)

    assert [(r.title, r.type, r.message) for r in receiver.received] == [
        (
            ALERT_TITLE,
            "failure",
            f"XNYS OVERDUE: the forecast from session {TUE} is missing (the latest made is from {MON})",
        ),
        (
            ALERT_TITLE,
            "failure",
            f"XNYS OVERDUE: the forecast from session {WED} is missing (the latest made is from {MON})",
        ),
        (RESOLVED_TITLE, "success", f"XNYS on time again: the latest forecast is from session {WED}"),
    ]


# --- a real daemon --------------------------------------------------------------------------------

TICKERS = ["AAA", "BBB"]


def _write_closes(path: Path, through: date, count: int = 330) -> None:
    """AAA and BBB: `count` sessions of a calm random walk through `through`."""
    market = trading_calendar(NYSE)
    sessions = market.sessions_between(market.sessions_back(through, count), through)
    walk = np.exp(np.cumsum(np.random.default_rng(7).normal(0, 0.01, size=(len(TICKERS), len(sessions))), axis=1))
    lines = ["date,ticker,close"]
    lines += [f"{d},{t},{100 * walk[i, j]:.4f}" for i, t in enumerate(TICKERS) for j, d in enumerate(sessions)]
    path.write_text("\n".join(lines) + "\n")


def _messages(receiver: Receiver, kind: str) -> list[Received]:
    return [r for r in receiver.received if r.type == kind]


def test_a_running_daemon_sends_the_briefing_an_overdue_alert_and_a_failed_runs_alert(sqlite_url, tmp_path):
    latest = latest_closed_now(NYSE)
    before = trading_calendar(NYSE).sessions_back(latest, 2)
    prices = tmp_path / "prices.csv"
    _write_closes(prices, before)  # the source has not published the latest close: the tickers wait for it
    env = forecaster_env(
        sqlite_url,
        source=f"csv:{prices}",
        tickers=",".join(TICKERS),
        report_dir=str(tmp_path / "reports"),
        schedule="*/2 * * * * *",
        report_schedule="*/3 * * * * *",
        misfire_grace_seconds="60",  # so the latest session's forecast is overdue by now
    )
    once = run_forecaster("run", "--once", "--as-of", str(before), env=env, timeout=300)
    assert once.returncode == 0, once.stderr[-2000:]
    log = tmp_path / "daemon.log"

    with receiving() as receiver:
        notify = {"FORECASTER_NOTIFY_URLS": receiver.url(login="user:SECRET")}
        with forecaster_running("run", env=env | notify, log_path=log) as daemon:
            wait_for(lambda: _messages(receiver, "info"), 120, "the briefing")
            wait_for(
                lambda: any("OVERDUE" in r.message for r in _messages(receiver, "failure")), 60, "the overdue alert"
            )
            lines = prices.read_text().splitlines()
            lines[-1] = lines[-1].rsplit(",", 1)[0] + ",nan"  # the price file goes bad under the daemon
            prices.write_text("\n".join(lines) + "\n")
            wait_for(lambda: any(" run " in r.message for r in _messages(receiver, "failure")), 60, "the run's alert")
            assert stop_forecaster(daemon) == 0

    briefing = _messages(receiver, "info")[0]
    html = tmp_path / "reports" / f"report-{before}.html"
    assert briefing.title == f"Forecast report {before} (preset default)"
    assert f"Forecast report {before}".encode() in briefing.attachments[html.name]
    overdue = next(r.message for r in receiver.received if "OVERDUE" in r.message)
    assert overdue == f"XNYS OVERDUE: the forecast from session {latest} is missing (the latest made is from {before})"
    failed = next(r.message for r in receiver.received if " run " in r.message)
    assert (
        failed.startswith(f"XNYS session {latest}: run ")
        and " failed, 2 of 2 ticker(s) failed: AAA, BBB (AAA at fetch: " in failed
    )
    assert str(prices) in failed, "the cause names the file"
    assert len([r for r in receiver.received if "OVERDUE" in r.message]) == 1, "said once"
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    hidden = f"json://user:***@127.0.0.1:{receiver.port}/hook"  # apprise's ****, then the log's own ***
    assert f"notifications to {hidden}" in text
    assert "SECRET" not in text
