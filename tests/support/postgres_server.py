"""A private, throw-away PostgreSQL server that a test may stop and start at will.

The shared server on 5432 serves every other test and must never be stopped, so an outage
test runs its own: `initdb` into a fresh directory, then `pg_ctl start/stop` on a free port,
with its socket in that directory. PostgreSQL refuses to run as root, so when the tests run
as root the server's commands run as the `postgres` OS user (runuser).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.processes import free_port


def postgres_bin_dir() -> Path | None:
    """The directory of initdb and pg_ctl (newest installed version), or None."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """initdb'd on creation; `start`, `stop` (immediate by default: like a crash) and `remove`."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        # Not under pytest's tmp_path: the postgres user cannot enter root's 0700 directories.
        self.root = Path(tempfile.mkdtemp(prefix="fc_pg_"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [*self.as_postgres, str(self.bin_dir / program), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({result.returncode}): {result.stderr or result.stdout}"
            )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """A fast restart, as an operator's `pg_ctl restart -m fast`: every connection is cut."""
        self.stop("fast")
        self.start()

    def is_running(self) -> bool:
        status = subprocess.run(
            [*self.as_postgres, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            check=False,
        )
        return status.returncode == 0

    def remove(self) -> None:
        """Stops the server if it runs and deletes its files."""
        try:
            if self.data.exists() and self.is_running():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
