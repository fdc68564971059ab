"""`forecaster fit`: train on a price file from the command line; bad input is one line and exit 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from forecaster.cli import main
from tests.support import paths
from tests.support.processes import forecaster_env, run_forecaster

FIXTURES = paths.FIXTURES / "seed_parity"


def test_fit_reproduces_the_notebook_and_reports_json_and_losses(tmp_path, sqlite_url):
    losses_csv = tmp_path / "losses.csv"

    result = run_forecaster(
        "fit",
        "--preset",
        "seed",
        "--prices",
        str(FIXTURES / "prices.csv"),
        "--epochs",
        "300",
        "--init-params",
        str(FIXTURES / "init_params.json"),
        "--losses-csv",
        str(losses_csv),
        "--json",
        env=forecaster_env(sqlite_url),
    )

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 300 and summary["load_seconds"] >= 0 and summary["train_seconds"] >= 0
    assert set(summary["params"]) == {
        *("w_f", "u_f", "b_f", "w_i", "u_i", "b_i", "w_o", "u_o", "b_o", "w_c", "u_c", "b_c")
    }
    with open(losses_csv) as handle:
        rows = list(csv.DictReader(handle))
    with open(FIXTURES / "expected_losses.csv") as handle:
        expected = [float(row["mean_batch_loss"]) for row in csv.DictReader(handle)]
    assert [int(row["epoch"]) for row in rows] == list(range(1, 301))
    assert all(abs(float(row["loss"]) - want) <= 1e-3 * want for row, want in zip(rows, expected, strict=True))
    assert summary["final_loss"] == pytest.approx(float(rows[-1]["loss"]))


def test_fit_prints_a_human_summary_with_what_its_help_promises_by_default(capsys):
    assert main(["fit", "--prices", str(FIXTURES / "prices.csv"), "--epochs", "3"]) == 0

    out = capsys.readouterr().out
    assert "preset seed: 3 epochs, 1 ticker(s)" in out
    assert "246 samples" in out and "final loss" in out and "next close forecast" in out
    assert "80 % interval" in out and "95 % interval" in out
    (weights,) = [line for line in out.splitlines() if line.strip().startswith("weights:")]
    assert len(weights.split(":", 1)[1].split(",")) == 12


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("Date,Open\n2024-01-02,1\n", "close"),
        ("Date,Close\n2024-01-02,abc\n2024-01-03,2\n", "close"),
        ("Date,Close\n2024-01-02,-1\n2024-01-03,2\n", "positive"),
        ("Date,Close\n2024-01-02,0\n2024-01-03,2\n", "positive"),
        ("Date,Close\n2024-01-02,1\n2024-01-03,2\n2024-01-04,3\n", "need at least 5"),
    ],
    ids=["no close column", "non-numeric close", "negative close", "zero close", "too few rows"],
)
def test_bad_price_files_are_one_line_errors_with_exit_code_2(tmp_path, capsys, content, expected):
    path = _write(tmp_path / "prices.csv", content)

    assert main(["fit", "--prices", path]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err


def test_a_missing_price_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["fit", "--prices", str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.csv" in err


def test_an_unknown_preset_is_a_one_line_error(capsys):
    assert main(["fit", "--preset", "fancy", "--prices", str(FIXTURES / "prices.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fancy" in err and "seed" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [("{not json", "not valid JSON"), ('{"w_f": 1}', "missing"), ("[1, 2]", "JSON object")],
)
def test_bad_initial_parameters_are_one_line_errors(tmp_path, capsys, content, expected):
    path = _write(tmp_path / "init.json", content)

    assert main(["fit", "--prices", str(FIXTURES / "prices.csv"), "--init-params", path]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


def test_the_real_command_never_shows_a_traceback_for_bad_input(tmp_path, sqlite_url):
    result = run_forecaster("fit", "--prices", str(tmp_path / "missing.csv"), env=forecaster_env(sqlite_url))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
