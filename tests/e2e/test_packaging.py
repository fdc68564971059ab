"""The built wheel is the product: installed outside the source tree, it migrates a database and
forecasts. (An editable install hides a file the wheel forgot; this does not.)"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support import paths

ROOT = paths.ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (built,) = out.glob("forecaster-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel's files unpacked into a folder of their own (its dependencies come from this venv)."""
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def _forecaster(installed: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m forecaster ARGS` from `cwd` with the unpacked wheel first on the path."""
    return subprocess.run(
        [sys.executable, "-m", "forecaster", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(installed), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_wheel_holds_every_migration_and_its_template(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {Path(name).name for name in names if name.startswith("forecaster/migrations/versions/")}

    assert {path.name for path in (ROOT / "migrations" / "versions").glob("*.py")} <= shipped
    assert {"forecaster/migrations/env.py", "forecaster/migrations/script.py.mako", "forecaster/py.typed"} <= names


def test_the_installed_wheel_migrates_a_new_database_and_forecasts_away_from_the_source_tree(
    installed: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'forecaster.db'}"
    env = {
        "FORECASTER_DATABASE_URL": url,
        "FORECASTER_SOURCE": "synthetic",
        "FORECASTER_TICKERS": "ALPHA",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }

    where = _forecaster(installed, tmp_path, "--version")
    upgraded = _forecaster(installed, tmp_path, "db", "upgrade", **env)
    forecast = _forecaster(installed, tmp_path, "run", "--once", "--as-of", "2025-06-02", **env)

    assert where.returncode == 0, where.stderr
    assert upgraded.returncode == 0, upgraded.stderr
    assert forecast.returncode == 0, forecast.stderr
    imported_from = subprocess.run(
        [sys.executable, "-c", "import forecaster, sys; sys.stdout.write(forecaster.__file__)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(imported_from).is_relative_to(installed)
    with sa.create_engine(url).connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM predictions WHERE ticker = 'ALPHA'")).scalar_one() == 1
