"""Running the real `forecaster` command as a child process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa


def forecaster_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment for a child `forecaster`: FORECASTER_* from `settings` (lower-case names)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORECASTER_")}
    env["FORECASTER_DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    env |= {f"FORECASTER_{name.upper()}": value for name, value in settings.items()}
    return env


def run_forecaster(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forecaster", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def start_forecaster(*args: str, env: dict[str, str], log_path: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
    """Starts `forecaster ARGS` with stdout and stderr going to `log_path`."""
    with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "forecaster", *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )


@contextmanager
def forecaster_running(
    *args: str, env: dict[str, str], log_path: str | os.PathLike[str]
) -> Iterator[subprocess.Popen[bytes]]:
    """`start_forecaster`; the process is killed and reaped on the way out if still running
    (a failed test must not leave a daemon behind)."""
    process = start_forecaster(*args, env=env, log_path=log_path)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop_forecaster(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM to the process if it still runs; its exit code once it has stopped."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    """A TCP port nothing listens on now (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def query_scalar(url: str, sql: str) -> Any:
    """One value from a fresh connection (the daemon holds its own)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(sql)).scalar()
    except sa.exc.OperationalError:
        return None  # not migrated yet, or locked for a moment
    except sa.exc.ProgrammingError:
        return None
    finally:
        engine.dispose()


def query_rows(url: str, sql: str) -> list[sa.Row[Any]]:
    """Every row of `sql` from a fresh connection."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(sql)).all())
    finally:
        engine.dispose()
