"""What the daemon needs besides its database is checked at start: a report directory or a
heartbeat file it cannot write, or a notification URL apprise cannot send to, is an exit-2 error
naming it, before the database is touched, in the log format asked for. Real processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.processes import forecaster_env, run_forecaster


@pytest.fixture
def not_a_directory(tmp_path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("")
    return path


def _refused(result, setting: str, path: Path) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert setting in result.stderr and str(path) in result.stderr, result.stderr
    return result.stderr


def test_a_report_directory_that_cannot_be_made_refuses_the_start(tmp_path, not_a_directory):
    database = tmp_path / "forecaster.db"
    reports = not_a_directory / "reports"
    env = forecaster_env(f"sqlite:///{database}", source="synthetic", tickers="AAA", report_dir=str(reports))

    stderr = _refused(run_forecaster("run", env=env), "FORECASTER_REPORT_DIR", reports)

    assert "cannot create the directory (Not a directory)" in stderr
    assert not database.exists(), "refused before the database was opened"


def test_a_heartbeat_file_that_cannot_be_written_refuses_the_start(tmp_path):
    database = tmp_path / "forecaster.db"
    beat = tmp_path / "missing" / "heartbeat.json"
    env = forecaster_env(
        f"sqlite:///{database}", source="synthetic", tickers="AAA", report_dir=str(tmp_path), heartbeat_file=str(beat)
    )

    stderr = _refused(run_forecaster("run", env=env), "FORECASTER_HEARTBEAT_FILE", beat)

    assert "cannot write it (No such file or directory)" in stderr
    assert not database.exists()


def test_with_json_logs_the_refusal_is_a_json_line(tmp_path, not_a_directory):
    reports = not_a_directory / "reports"
    env = forecaster_env(
        f"sqlite:///{tmp_path / 'forecaster.db'}", report_dir=str(reports), log_format="json", tickers="AAA"
    )

    line = json.loads(_refused(run_forecaster("run", env=env), "FORECASTER_REPORT_DIR", reports))

    assert line["level"] == "error" and line["logger"] == "forecaster.cli"
    assert line["message"].startswith(f"forecaster run: error: FORECASTER_REPORT_DIR {reports}: cannot create")


def test_a_notification_url_apprise_cannot_send_to_refuses_the_start_showing_only_its_scheme(tmp_path):
    database = tmp_path / "forecaster.db"
    env = forecaster_env(
        f"sqlite:///{database}",
        source="synthetic",
        tickers="AAA",
        report_dir=str(tmp_path / "reports"),
        notify_urls="json://127.0.0.1:9/hook, slack://TokenA/SECRET",  # Slack wants three tokens
    )

    result = run_forecaster("run", env=env)

    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "FORECASTER_NOTIFY_URLS: URL 2 of 2 (slack://***) is not one apprise can send to" in result.stderr
    assert "SECRET" not in result.stderr and "TokenA" not in result.stderr
    assert not database.exists()
