"""-q and -v on every command: warnings and errors only, or debug lines too; INFO by default."""

from __future__ import annotations

import os

import pytest

from forecaster.cli import main

pytestmark = pytest.mark.usefixtures("restored_logging")


@pytest.mark.parametrize(
    ("flag", "info", "debug"), [(None, True, False), ("-q", False, False), ("-v", True, True)], ids=str
)
def test_quiet_and_verbose_choose_the_lines_logged(monkeypatch, capsys, sqlite_url, flag, info, debug):
    for name in [n for n in os.environ if n.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FORECASTER_DATABASE_URL", sqlite_url)
    flags = [flag] if flag else []

    assert main(["run", "--once", "--as-of", "2024-03-04", "--source", "synthetic", "--tickers", "AAA", *flags]) == 0

    levels = [line.split()[2] for line in capsys.readouterr().err.splitlines() if line[:2] == "20"]
    assert ("INFO" in levels, "DEBUG" in levels) == (info, debug), levels


def test_quiet_and_verbose_together_are_refused(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["status", "-q", "-v"])

    assert exited.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
