"""A real PostgreSQL server for the test session (Debian's `postgresql` package).

Started once per session on a free loopback port in a temp dir; each test that asks gets a fresh
database. When run as root the cluster belongs to the `postgres` user, as initdb refuses root."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def find_pg_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    pg_ctl: list[str] | None = None  # the pg_ctl command line for this cluster (to stop and start it)

    def stop(self) -> None:
        """Stop the server at once (as a crash would), keeping its data."""
        assert self.pg_ctl is not None
        subprocess.run([*self.pg_ctl, "-m", "immediate", "stop"], check=True, capture_output=True)

    def start(self) -> None:
        assert self.pg_ctl is not None
        subprocess.run([*self.pg_ctl, "-w", "start"], check=True, capture_output=True)

    def url(self, database: str, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> None:
        subprocess.run(
            [
                "psql",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qc",
                sql,
            ],
            check=True,
            capture_output=True,
        )

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    pg_bin = find_pg_bin()
    if pg_bin is None:
        raise RuntimeError(
            "PostgreSQL server binaries not found; install the postgresql package (.ci/run does)"
        )
    root = Path(tempfile.mkdtemp(prefix="astrago-pg-"))
    data = root / "data"
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres", "postgres")
        root.chmod(0o755)
    port = free_port()
    subprocess.run(
        [*prefix, str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        [
            *prefix,
            str(pg_bin / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(root / "log"),
            "-o",
            options,
            "start",
        ],
        check=True,
        capture_output=True,
    )
    pg_ctl = [*prefix, str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options]
    try:
        yield PostgresServer(host="127.0.0.1", port=port, user="postgres", pg_ctl=pg_ctl)
    finally:
        subprocess.run(
            [*prefix, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)
