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

#: A heartbeat older than this means the process is gone or stuck.
STALE_AFTER_SECONDS = 30.0


def beat(path: str, *, role: str, database: str) -> None:
    """Rewrites the heartbeat file atomically; `database` is "ok" or why it cannot be reached.
    A file that cannot be written is ignored: the health check then reports it stale."""
    entry = {"pid": os.getpid(), "role": role, "database": database, "time": datetime.now(UTC).isoformat()}
    target = Path(path)
    try:
        with tempfile.NamedTemporaryFile("w", dir=target.parent, prefix=f".{target.name}.", delete=False) as handle:
            json.dump(entry, handle)
        os.replace(handle.name, target)
    except OSError:
        pass


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
    if age > STALE_AFTER_SECONDS:
        return ProcessHealth(False, f"UNHEALTHY: {who} last beat {age:.0f} s ago")
    if entry.get("database") != "ok":
        return ProcessHealth(False, f"UNHEALTHY: {who} cannot reach the database: {entry.get('database')}")
    return ProcessHealth(True, f"healthy: {who} beat {age:.0f} s ago and reaches the database")
