"""Bad input ends a command before any work: one line naming the thing at fault, exit 2, the database untouched.

And a database that cannot be reached is exit 1 from every command. The commands run
in-process through forecaster.cli.main with settings from the environment.
(Hypothesis fuzzes files and settings the same way: tests/cli/test_fuzz_inputs.py.)
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from forecaster.cli import main

pytestmark = pytest.mark.usefixtures("restored_logging")

LONG_TICKER = "A" * 33


def _run(argv: list[str], monkeypatch, capsys, **settings: str) -> tuple[int, str, str]:
    for name in [n for n in os.environ if n.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)
    for name, value in {"source": "synthetic", "tickers": "AAA", **settings}.items():
        monkeypatch.setenv(f"FORECASTER_{name.upper()}", value)
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_line_error(code: int, err: str, *expected: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and all(text in err for text in expected), err


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_a_ticker_longer_than_the_column_is_refused_before_postgresql_is_touched(postgres_url, monkeypatch, capsys):
    code, _, err = _run(["run", "--once"], monkeypatch, capsys, database_url=postgres_url, tickers=f"SPY,{LONG_TICKER}")

    _one_line_error(code, err, "setting tickers", f"ticker '{LONG_TICKER}' is longer than 32 characters")
    assert _tables(postgres_url) == []


@pytest.mark.parametrize("flag", ["S&P", "spy qqq", "BRK/B"])
def test_a_ticker_that_is_not_a_symbol_is_refused_on_the_command_line(sqlite_url, monkeypatch, capsys, flag):
    code, _, err = _run(
        ["backfill", "--start", "2024-03-04", "--end", "2024-03-05", "--tickers", flag],
        monkeypatch,
        capsys,
        database_url=sqlite_url,
    )

    _one_line_error(code, err, "flag tickers", "is not a symbol")


def test_tickers_in_a_csv_file_are_upper_cased_like_the_watch_list(sqlite_url, monkeypatch, capsys, tmp_path):
    prices = tmp_path / "prices.csv"
    rows = [f"2024-0{1 + k // 20}-{1 + k % 20:02d},spy,{100 + k % 7}" for k in range(40)]  # not all sessions: fine
    prices.write_text("date,ticker,close\n" + "\n".join(rows) + "\n")

    code, _, err = _run(
        ["run", "--once", "--as-of", "2024-02-20"],
        monkeypatch,
        capsys,
        database_url=sqlite_url,
        source=f"csv:{prices}",
        tickers="SPY",
    )

    assert code == 0, err
    assert "SPY" in (_run(["predictions", "--format", "csv"], monkeypatch, capsys, database_url=sqlite_url)[1])


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


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("lease_seconds", "1e20"),
        ("claim_size", "1" + "0" * 20),
        ("misfire_grace_seconds", "1" + "0" * 20),
        ("database_retries", "1000"),
        ("fetch_backoff_seconds", "nan"),
    ],
)
@pytest.mark.parametrize("command", [["run", "--once"], ["status"]], ids=["run-once", "status"])
def test_a_number_out_of_its_bounds_is_a_one_line_error(sqlite_url, monkeypatch, capsys, setting, value, command):
    code, _, err = _run(command, monkeypatch, capsys, database_url=sqlite_url, **{setting: value})

    _one_line_error(code, err, f"setting {setting}")
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists(), "nothing was created"


def test_a_schedule_that_never_fires_is_refused(sqlite_url, monkeypatch, capsys):
    code, _, err = _run(["run"], monkeypatch, capsys, database_url=sqlite_url, schedule="0 0 31 2 *")

    _one_line_error(code, err, "setting schedule", "never fires")


@pytest.mark.parametrize(
    ("out", "expected"), [("FILE", "exists and is not a directory"), ("/sys/kernel", "cannot write into the directory")]
)
def test_a_report_directory_that_cannot_be_written_is_refused(
    migrated_engine, sqlite_url, monkeypatch, capsys, tmp_path, out, expected
):
    if out == "FILE":
        out = str(tmp_path / "a-file")
        Path(out).write_text("not a directory")

    code, _, err = _run(["report", "--out", out], monkeypatch, capsys, database_url=sqlite_url)

    _one_line_error(code, err, out, expected)


def test_a_missing_sqlite_file_is_an_error_naming_it_never_a_new_empty_database(monkeypatch, capsys, tmp_path):
    missing = tmp_path / "typo.db"
    for command in (["status"], ["predictions"], ["report"]):
        code, _, err = _run(command, monkeypatch, capsys, database_url=f"sqlite:///{missing}")

        _one_line_error(code, err, f"no database file at {missing}", "forecaster db upgrade")
    assert not missing.exists()


@pytest.mark.parametrize(
    "command",
    [
        ["db", "upgrade"],
        ["run", "--once"],
        ["backfill", "--start", "2024-03-04", "--end", "2024-03-05"],
        ["status"],
        ["predictions"],
        ["report"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_an_unreachable_database_is_exit_1_with_one_line_from_every_command(monkeypatch, capsys, tmp_path, command):
    code, _, err = _run(
        command,
        monkeypatch,
        capsys,
        database_url="postgresql://forecaster@127.0.0.1:1/nowhere",
        report_dir=str(tmp_path),
    )

    assert code == 1, err
    assert err.count("\n") == 1 and "127.0.0.1" in err, err


@pytest.mark.parametrize(
    "flags",
    [
        ["fit", "--prices", "prices.csv", "--epochs", "1" + "0" * 20],
        ["predictions", "--limit", "1" + "0" * 20],
        ["report", "--charts", "-1"],
    ],
    ids=["epochs", "limit", "charts"],
)
def test_a_flag_out_of_its_bounds_is_exit_2_naming_the_flag_and_its_range(capsys, flags):
    with pytest.raises(SystemExit) as exited:
        main(flags)

    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert f"argument {flags[-2]}: " in err and "is not a whole number from" in err, err
    assert "Traceback" not in err


@pytest.fixture
def full_disk(tmp_path):
    """A directory on a filesystem of 16 KiB (a tmpfs mounted for the test: the disk a report fills)."""
    directory = tmp_path / "full"
    directory.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(directory)], check=True)
    yield directory
    subprocess.run(["umount", str(directory)], check=True)


def test_a_report_onto_a_full_disk_is_one_line_naming_the_directory_and_exit_1(
    sqlite_url, monkeypatch, capsys, full_disk
):
    backfill = ["backfill", "--start", "2024-03-04", "--end", "2024-03-06"]
    assert _run(backfill, monkeypatch, capsys, database_url=sqlite_url)[0] == 0

    code, _, err = _run(
        ["report", "--format", "md,html,csv", "--out", str(full_disk)], monkeypatch, capsys, database_url=sqlite_url
    )

    assert (code, err) == (1, f"forecaster report: {full_disk}: No space left on device\n")


@pytest.fixture
def read_only_database(tmp_path, monkeypatch, capsys) -> Iterator[str]:
    """A forecast database in a directory bind-mounted read-only (the volume a container got wrong)."""
    source, mounted = tmp_path / "database", tmp_path / "read-only"
    source.mkdir()
    mounted.mkdir()
    backfill = ["backfill", "--start", "2024-03-04", "--end", "2024-03-05"]
    assert _run(backfill, monkeypatch, capsys, database_url=f"sqlite:///{source / 'f.db'}")[0] == 0
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root (CI runs as root)")
    subprocess.run(["mount", "--bind", str(source), str(mounted)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(mounted)], check=True)
    yield f"sqlite:///{mounted / 'f.db'}"
    subprocess.run(["umount", str(mounted)], check=True)


@pytest.mark.parametrize(
    "command", [["status"], ["predictions"], ["report"], ["run", "--once"], ["db", "upgrade"]], ids=" ".join
)
def test_a_database_on_a_read_only_mount_is_exit_2_naming_the_directory_and_the_cause(
    read_only_database, monkeypatch, capsys, tmp_path, command
):
    code, _, err = _run(command, monkeypatch, capsys, database_url=read_only_database, report_dir=str(tmp_path))

    assert code == 2, err
    assert err.count("\n") == 1 and f"directory {tmp_path / 'read-only'} is on a read-only file system" in err, err


def test_an_error_about_a_huge_value_is_cut_to_a_readable_line(sqlite_url, monkeypatch, capsys):
    code, _, err = _run(["status"], monkeypatch, capsys, database_url=sqlite_url, timezone="X" * 100_000)

    _one_line_error(code, err, "setting timezone", "more characters)")
    assert len(err) < 600
