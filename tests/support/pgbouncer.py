"""A private PgBouncer in transaction pooling mode in front of a private PostgreSQL server.

Debian's `pgbouncer` package, run in the foreground on a free port with a configuration of its
own: every client transaction may run on any of a few server connections, as in the production
deployments the scheduler lease is made for. PgBouncer refuses to run as root, so when the tests
run as root it runs as the `postgres` OS user (runuser), like the private server.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.postgres_server import PostgresServer
from tests.support.processes import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
#: server connections per database: fewer than the daemons' clients, so transactions share them
POOL_SIZE = 4


class PgBouncer:
    """`start`, `stop` (SIGTERM: every client connection is cut) and `restart`; `url` is what
    the forecaster connects to."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.root = Path(tempfile.mkdtemp(prefix="fc_pgbouncer_"))
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        (self.root / "userlist.txt").write_text('"postgres" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            f"""\
[databases]
postgres = host=127.0.0.1 port={server.port} dbname=postgres user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.root / "userlist.txt"}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {self.root / "pgbouncer.log"}
"""
        )
        if server.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            for path in self.root.iterdir():
                shutil.chown(path, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [*self.server.as_postgres, PGBOUNCER, str(self.root / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited {self._process.returncode}: {self.log()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"pgbouncer did not listen on {self.port}: {self.log()[-2000:]}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()  # runuser passes SIGTERM on; pgbouncer drops every client
            self._process.wait(timeout=30)
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
