"""`/metrics`: a real daemon with FORECASTER_METRICS_PORT, scraped over HTTP and parsed as Prometheus does.

A backfill of the sessions before the latest closed one, then the daemon catches up the latest:
its scrape says the last success, the tickers of that cycle, this process's stages and lock,
nothing pending or overdue, and the coverage over the realised forecasts. A port that cannot be
listened on is an exit-2 error naming the setting.
"""

from __future__ import annotations

import socket
import urllib.request
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from forecaster.calendar import NYSE, trading_calendar
from tests.support.processes import (
    forecaster_env,
    forecaster_running,
    free_port,
    run_forecaster,
    stop_forecaster,
    wait_for,
)
from tests.support.sessions import latest_closed_now

TICKERS = "AAA,BBB"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(port: int) -> Samples:
    """{(sample name, sorted labels): value}, or {} while nothing listens yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _epoch(day) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def test_a_running_daemon_serves_the_jobs_state_and_its_own_on_metrics(sqlite_url, tmp_path):
    latest = latest_closed_now(NYSE)
    market = trading_calendar(NYSE)
    first, before = market.sessions_back(latest, 26), market.sessions_back(latest, 2)
    env = forecaster_env(sqlite_url, source="synthetic", tickers=TICKERS, report_dir=str(tmp_path / "reports"))
    backfill = run_forecaster("backfill", "--start", str(first), "--end", str(before), env=env, timeout=300)
    assert backfill.returncode == 0, backfill.stderr[-2000:]
    port = free_port()
    started = datetime.now(UTC).timestamp()

    with forecaster_running(
        "run", env=env | {"FORECASTER_METRICS_PORT": str(port)}, log_path=tmp_path / "d.log"
    ) as daemon:
        xnys = (("calendar", "XNYS"),)
        wait_for(
            lambda: _scrape(port).get(("forecaster_last_cycle_session_timestamp_seconds", xnys)) == _epoch(latest),
            120,
            "a scrape after the catch-up of the latest session",
        )
        samples = _scrape(port)
        assert stop_forecaster(daemon) == 0

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("forecaster_database_up") == 1
    assert value("forecaster_scheduler_lock_held") == 1
    assert (
        started <= value("forecaster_last_success_timestamp_seconds", calendar="XNYS") <= datetime.now(UTC).timestamp()
    )
    assert value("forecaster_latest_forecast_session_timestamp_seconds", calendar="XNYS") == _epoch(latest)
    assert value("forecaster_overdue", calendar="XNYS") == 0
    ok, failed = (value("forecaster_last_cycle_tickers", calendar="XNYS", outcome=o) for o in ("ok", "failed"))
    assert (ok, failed) == (2, 0)
    assert value("forecaster_last_cycle_duration_seconds", calendar="XNYS") > 0
    for stage in ("fetch", "train", "write"):
        assert value("forecaster_last_cycle_stage_seconds", calendar="XNYS", stage=stage) > 0, stage
        assert value("forecaster_stage_seconds_total", calendar="XNYS", stage=stage) > 0, stage
    assert value("forecaster_tasks", status="pending") == value("forecaster_tasks", status="leased") == 0
    assert value("forecaster_interval_coverage_forecasts") == 2 * 20  # two tickers, the latest 20 target sessions
    assert (
        0
        <= value("forecaster_interval_coverage_ratio", level="0.8")
        <= value("forecaster_interval_coverage_ratio", level="0.95")
        <= 1
    )


def test_a_metrics_port_in_use_refuses_the_start(sqlite_url, tmp_path):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = forecaster_env(
            sqlite_url, tickers="AAA", report_dir=str(tmp_path), metrics_port=str(port), source="synthetic"
        )
        result = run_forecaster("run", env=env)

    assert result.returncode == 2, result.stderr
    assert f"FORECASTER_METRICS_PORT {port}: cannot listen on it (Address already in use)" in result.stderr
