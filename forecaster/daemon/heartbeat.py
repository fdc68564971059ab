"""A daemon's heartbeat file: proof, for a health check in the same container, that this process's
main loop is alive and reaches the database (`forecaster status --process`).

`forecaster status` answers for the whole job (is the latest forecast there?), which says
nothing about one worker among several; this answers for one process. The daemon rewrites the
file every couple of seconds when FORECASTER_HEARTBEAT_FILE is set.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from forecaster.errors import UserError

#: A heartbeat older than this means the process is gone or stuck.
STALE_AFTER_SECONDS = 30.0
#: A heartbeat dated further ahead than this was not written by a clock that agrees with ours.
AHEAD_TOLERANCE_SECONDS = 5.0


def beat(path: str, *, role: str, database: str) -> str | None:
    """Rewrites the heartbeat file atomically; `database` is "ok" or why it cannot be reached.
    Returns why the file could not be written, or None (the caller says so once: the health
    check would otherwise only call the process stale)."""
    entry = {"pid": os.getpid(), "role": role, "database": database, "time": datetime.now(UTC).isoformat()}
    target = Path(path)
    written: str | None = None
    try:
        with tempfile.NamedTemporaryFile("w", dir=target.parent, prefix=f".{target.name}.", delete=False) as handle:
            written = handle.name
            json.dump(entry, handle)
        os.replace(written, target)
    except OSError as error:
        if written is not None:
            Path(written).unlink(missing_ok=True)  # a full disk, or a directory in the file's place
        return error.strerror or str(error)
    return None


def check_writable(path: str) -> None:
    """Beats once (as "starting"), or raises UserError naming the file and why it cannot be written."""
    reason = beat(path, role="starting", database="not connected yet")
    if reason is not None:
        raise UserError(f"FORECASTER_HEARTBEAT_FILE {path}: cannot write it ({reason})")


@dataclass(frozen=True)
class ProcessHealth:
    healthy: bool
    line: str


def check_process(path: str, now: datetime) -> ProcessHealth:
    """Healthy when the heartbeat is fresh and the process reached the database."""
    try:
        entry = json.loads(Path(path).read_text())
        written = datetime.fromisoformat(entry["time"])
    except FileNotFoundError:
        return ProcessHealth(False, f"UNHEALTHY: no heartbeat at {path}: the daemon is not running (yet)")
    except (OSError, ValueError, KeyError, TypeError) as error:
        return ProcessHealth(False, f"UNHEALTHY: unreadable heartbeat at {path} ({error})")
    age = (now - written).total_seconds()
    who = f"pid {entry.get('pid')} ({entry.get('role')})"
    if age < -AHEAD_TOLERANCE_SECONDS:
        return ProcessHealth(
            False,
            f"UNHEALTHY: the heartbeat at {path} of {who} is dated {-age:.0f} s ahead of this host's clock: "
            "it proves nothing (clocks that disagree, or a file not written by the daemon)",
        )
    age = max(age, 0.0)  # a beat written a moment ago by a clock a little ahead
    if age > STALE_AFTER_SECONDS:
        return ProcessHealth(False, f"UNHEALTHY: {who} last beat {age:.0f} s ago")
    if entry.get("database") != "ok":
        return ProcessHealth(False, f"UNHEALTHY: {who} cannot reach the database: {entry.get('database')}")
    return ProcessHealth(True, f"healthy: {who} beat {age:.0f} s ago and reaches the database")
