"""A database password never shows: not in logs (human or JSON), errors, tracebacks or reports.

Every command that takes a database URL is run in-process (forecaster.cli.main, settings
from the environment) with a URL carrying the password PASSWORD, against a server that
answers (PostgreSQL trust authentication accepts any password), one that does not, and URLs
that are malformed; stdout, stderr and every file the commands write are searched for it.
"""

from __future__ import annotations

import gc
import os
import traceback
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa

from forecaster.cli import main
from tests.support.lines import messages

PASSWORD = "s3cr3t-PW"
UNREACHABLE = f"postgresql+psycopg://forecaster:{PASSWORD}@127.0.0.1:1/nope"
MALFORMED = [
    f"postgresql+psycopg://forecaster:{PASSWORD}@127.0.0.1:notaport/db",  # a port that is not a number
    f"postgresql+psycopg://forecaster:{PASSWORD}@@127.0.0.1:1/db",  # an '@' too many
    f"postgresql+psycopg://forecaster:s3cr3t@{PASSWORD}@127.0.0.1:1/db",  # an unescaped '@' in the password
    f"postgres://forecaster:{PASSWORD}@127.0.0.1:1/nope?sslmode=bogus",  # an option the driver refuses
    f"mysql://forecaster:{PASSWORD}@127.0.0.1:1/db",  # another database
    f"postgresql+nodriver://forecaster:{PASSWORD}@127.0.0.1:1/db",  # a driver that is not installed
    f"postgresql://forecaster@127.0.0.1:1/db?password={PASSWORD}",  # the password as a query parameter
    f"postgresql://forecaster@127.0.0.1:1/db?sslmode=disable&PASSWORD={PASSWORD}&connect_timeout=2",
]


pytestmark = pytest.mark.usefixtures("restored_logging")


@pytest.fixture
def reachable_url(postgres_url) -> str:
    """The test database on the shared server, reached with a password (trust auth ignores it)."""
    return sa.make_url(postgres_url).set(password=PASSWORD).render_as_string(hide_password=False)


def _run(
    argv: list[str], url: str, log_format: str, tmp_path: Path, monkeypatch, capsys, *, connects: bool = False
) -> tuple[int | str, str]:
    """(exit code, or the traceback when the command raised; all it printed)."""
    for name in [n for n in os.environ if n.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)
    for name, value in {
        "DATABASE_URL": url,
        "LOG_FORMAT": log_format,
        "SOURCE": "synthetic",
        "TICKERS": "AAA",
        "REPORT_DIR": str(tmp_path / "reports"),
        "FETCH_RETRIES": "0",
    }.items():
        monkeypatch.setenv(f"FORECASTER_{name}", value)
    try:
        code: int | str = main(argv)
    except BaseException:  # noqa: BLE001 - a traceback is the failure under test, and it must not leak either
        code = traceback.format_exc()
    finally:
        if connects:
            _collect_pooled_connections()
    out = capsys.readouterr()
    return code, f"{out.out}\n{out.err}\n{code}"


def _collect_pooled_connections() -> None:
    """The commands leave their engine's pooled connections to the garbage collector (harmless
    in a process that exits next); collect them here, where their ResourceWarning is expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


COMMANDS = [
    ["db", "upgrade"],
    ["run", "--once", "--as-of", "2024-03-04"],
    ["status"],
    ["status", "--json"],
    ["predictions", "--format", "json"],
    ["report", "--format", "md"],
    ["report", "--format", "html"],
]


def _written_files(tmp_path: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".png")


@pytest.mark.parametrize("log_format", ["human", "json"])
def test_a_reachable_database_url_with_a_password_never_shows_it(
    reachable_url, log_format, tmp_path, monkeypatch, capsys
):
    results = {
        " ".join(argv): _run(argv, reachable_url, log_format, tmp_path, monkeypatch, capsys, connects=True)
        for argv in COMMANDS
    }

    codes = {command: code for command, (code, _) in results.items()}
    # Each command worked; status says "unhealthy" (exit 1): the only forecast is from 2024.
    assert codes == dict.fromkeys(results, 0) | {"status": 1, "status --json": 1}, codes
    assert list((tmp_path / "reports").glob("*.md")) and list((tmp_path / "reports").glob("*.html"))
    for command, (_, printed) in results.items():
        assert PASSWORD not in printed, f"{command} printed the password:\n{printed}"
    assert PASSWORD not in _written_files(tmp_path)


@pytest.mark.parametrize("log_format", ["human", "json"])
@pytest.mark.parametrize(
    "url", [UNREACHABLE, *MALFORMED], ids=["unreachable", *[f"malformed{k}" for k in range(len(MALFORMED))]]
)
def test_a_database_url_that_fails_is_a_one_line_error_without_the_password(
    url, log_format, tmp_path, monkeypatch, capsys
):
    for argv in COMMANDS:
        code, printed = _run(argv, url, log_format, tmp_path, monkeypatch, capsys)

        assert PASSWORD not in printed, f"{argv} printed the password:\n{printed}"
        assert code in (1, 2), f"{argv} should fail with an error, not {code}"
        assert "Traceback" not in printed
        errors = [line for line in messages(printed) if line.startswith("forecaster ")]
        assert len(errors) == 1, printed
    assert PASSWORD not in _written_files(tmp_path)
