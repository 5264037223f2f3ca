"""A real PostgreSQL (Debian's `postgresql` package) on a free localhost port in a temporary
folder, for tests and benchmarks: `initdb`, then `pg_ctl start` / `stop` / `restart`.

PostgreSQL refuses to run as root, so when the tests run as root (CI) the server runs as the
`postgres` system user (`runuser`), in a folder handed over to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pneumonet_testing.concurrent_sessions import free_port

BINARY_FOLDERS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
SERVER_USER = "postgres"  # the system user Debian's package creates
DATABASE_USER = "pneumonet"
START_TIMEOUT_S = 60


def binary(name: str) -> Path | None:
    """A PostgreSQL server program (`initdb`, `pg_ctl`), newest version first."""
    for folder in BINARY_FOLDERS:
        if (folder / name).is_file():
            return folder / name
    return None


def postgresql_available() -> bool:
    """Whether `initdb` and `pg_ctl` are installed (and a non-root user to run them as root)."""
    if binary("initdb") is None or binary("pg_ctl") is None:
        return False
    return os.getuid() != 0 or shutil.which("runuser") is not None


@dataclass
class PostgresServer:
    """A running PostgreSQL: its folder and port; `url(database)` for SQLAlchemy."""

    folder: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{DATABASE_USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=on"
        _run_as_server_user(
            binary("pg_ctl"),
            *("-D", self.folder / "data", "-l", self.folder / "server.log", "-o", options),
            *("-w", "-t", str(START_TIMEOUT_S), "start"),
        )
        return self

    def stop(self) -> None:
        _run_as_server_user(binary("pg_ctl"), "-D", self.folder / "data", "-m", "fast", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.url(name)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgresql() -> PostgresServer:
    """initdb in a new temporary folder (trust authentication, localhost only), then start."""
    folder = Path(tempfile.mkdtemp(prefix="pneumonet-postgresql-"))
    if os.getuid() == 0:
        shutil.chown(folder, SERVER_USER, SERVER_USER)
    _run_as_server_user(
        binary("initdb"),
        *("-D", folder / "data", "-U", DATABASE_USER, "-A", "trust", "-E", "UTF8"),
        "--no-instructions",
    )
    return PostgresServer(folder, free_port()).start()


def _run_as_server_user(*command) -> None:
    arguments = [str(part) for part in command]
    if os.getuid() == 0:
        arguments = ["runuser", "-u", SERVER_USER, "--", *arguments]
    completed = subprocess.run(arguments, capture_output=True, text=True, cwd="/")
    if completed.returncode != 0:
        raise RuntimeError(f"{Path(arguments[0]).name} failed: {completed.stderr.strip()[-500:]}")
