"""The command line as a new user meets it: --version, a description on every command, every flag's
format and default, and `forecaster predictions` with --latest, --as-of and --limit."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from importlib.metadata import version

import pytest

from forecaster.cli import main
from forecaster.cli.parser import build_parser

pytestmark = pytest.mark.usefixtures("restored_logging")


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, by its name as typed ("db upgrade" for the nested one)."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[f"{prefix}{name}"] = sub
                    walk(sub, f"{prefix}{name} ")

    walk(build_parser(), "")
    return found


def test_version_prints_the_installed_version():
    result = subprocess.run(
        [sys.executable, "-m", "forecaster", "--version"], capture_output=True, text=True, check=False
    )

    assert (result.returncode, result.stdout.strip()) == (0, f"forecaster {version('forecaster')}")


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_command_has_a_paragraph_saying_what_it_does(command):
    parser = _commands()[command]

    description = parser.description or ""
    assert description.count(".") >= 2 and len(description) > 80, f"{command}: {description!r}"


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_flag_says_its_format_and_default(command):
    for action in _commands()[command]._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help, f"{command} {action.option_strings}: no help"
        takes_a_value = action.nargs != 0
        if takes_a_value:
            assert action.metavar or action.choices, f"{command} {action.option_strings}: no format shown"
            assert action.required or "default" in action.help, f"{command} {action.option_strings}: {action.help!r}"


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


def test_the_predictions_table_fits_a_terminal_and_says_when_rows_were_left_out(forecast_database, capsys):
    assert main(["predictions", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert lines[0].split()[:4] == ["ticker", "made", "after", "for"]
    assert len(lines) == 4 and "--limit 0 for all" in lines[-1]
    assert max(len(line) for line in lines) <= 120


def test_a_csv_source_without_some_tickers_of_the_watch_list_is_refused_before_any_work(
    sqlite_url, monkeypatch, capsys, tmp_path
):
    prices = tmp_path / "prices.csv"
    prices.write_text("date,ticker,close\n2024-03-04,AAA,10\n2024-03-05,AAA,11\n")
    for name in [n for n in os.environ if n.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)

    code = main(
        ["run", "--once", "--database-url", sqlite_url, "--source", f"csv:{prices}", "--tickers", "AAA,BBB,CCC"]
    )

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{prices}: no prices for BBB, CCC of the watch list in the file" in err
    assert not (tmp_path / "forecaster.db").exists()
