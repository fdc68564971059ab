"""`forecaster predictions`: the forecasts newest first, with --latest, --as-of and --limit, in a table that fits a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from forecaster.cli import main

pytestmark = pytest.mark.usefixtures("restored_logging")


@pytest.fixture
def forecast_database(sqlite_url, monkeypatch, capsys) -> str:
    """Three sessions of forecasts for two tickers (synthetic prices), made in-process."""
    for name in [n for n in os.environ if n.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FORECASTER_DATABASE_URL", sqlite_url)
    assert (
        main(
            [
                "backfill",
                "--start",
                "2024-03-04",
                "--end",
                "2024-03-06",
                "--source",
                "synthetic",
                "--tickers",
                "AAA,BBB",
            ]
        )
        == 0
    )
    capsys.readouterr()
    return sqlite_url


@pytest.mark.parametrize("output", [[], ["--format", "json"]], ids=["table", "json"])
def test_output_cut_short_by_its_reader_ends_quietly_as_a_closed_pipe(forecast_database, output):
    """`forecaster predictions | head -1`: the reader is gone before the first row is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "forecaster", "predictions", *output],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ | {"FORECASTER_DATABASE_URL": forecast_database},
            check=False,
        )
    finally:
        os.close(write_end)

    assert (result.returncode, result.stderr) == (141, "")


def _predictions(capsys, *flags: str) -> list[dict]:
    assert main(["predictions", "--format", "json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def test_predictions_are_newest_first_and_latest_gives_the_forecasts_from_the_last_session(forecast_database, capsys):
    every = _predictions(capsys)
    latest = _predictions(capsys, "--latest")

    assert [(r["as_of"], r["ticker"]) for r in every] == [
        ("2024-03-06", "AAA"),
        ("2024-03-06", "BBB"),
        ("2024-03-05", "AAA"),
        ("2024-03-05", "BBB"),
        ("2024-03-04", "AAA"),
        ("2024-03-04", "BBB"),
    ]
    assert [(r["as_of"], r["ticker"]) for r in latest] == [("2024-03-06", "AAA"), ("2024-03-06", "BBB")]
    assert all(r["lower_80"] < r["predicted_close"] < r["upper_80"] for r in every)


def test_predictions_as_of_a_session_and_a_limit(forecast_database, capsys):
    assert [r["ticker"] for r in _predictions(capsys, "--as-of", "2024-03-05")] == ["AAA", "BBB"]
    assert len(_predictions(capsys, "--limit", "3")) == 3


def test_the_predictions_table_fits_a_terminal_and_says_on_stderr_when_rows_were_left_out(forecast_database, capsys):
    assert main(["predictions", "--limit", "2"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()

    assert lines[0].split()[:5] == ["ticker", "market", "made", "after", "for"]
    assert len(lines) == 3 and max(len(line) for line in lines) <= 120
    assert err == "(the newest 2 rows; --limit N for more, --limit 0 for all)\n"
    assert main(["predictions", "--limit", "1"]) == 0
    assert capsys.readouterr().err.startswith("(the newest row;")


def test_a_ticker_on_no_watch_list_and_never_forecast_is_exit_2_with_the_nearest_names(forecast_database, capsys):
    assert main(["predictions", "--ticker", "AAB"]) == 2
    assert capsys.readouterr().err == (
        "forecaster predictions: error: ticker AAB is not on the watch list and has no forecasts in this "
        "database (nearest: AAA)\n"
    )
    assert main(["predictions", "--ticker", "AAA", "--since", "2030-01-01"]) == 0  # known, none that recent
    out, err = capsys.readouterr()
    assert (out, err) == ("", "no forecasts match\n")


def test_a_preset_that_is_not_forecasters_and_never_forecast_is_exit_2_with_the_nearest_names(
    forecast_database, capsys
):
    assert main(["predictions", "--preset", "defualt"]) == 2
    assert capsys.readouterr().err == (
        "forecaster predictions: error: preset 'defualt' is not one of forecaster's and has no forecasts in this "
        "database (nearest: default)\n"
    )
    assert main(["predictions", "--preset", "seed"]) == 0  # one of forecaster's, never forecast here
    out, err = capsys.readouterr()
    assert (out, err) == ("", "no forecasts match\n")
