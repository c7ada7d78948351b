"""A real MariaDB server for the test session (Debian's `mariadb-server`, 10.11).

Started once per session on a free loopback port in a temp dir; each test that asks gets a fresh
database. Facts this relies on, checked on Debian 12:
- `mariadb-install-db --auth-root-authentication-method=normal` makes a root that logs in over the socket;
  the tests' TCP clients use an `astrago` user created for `127.0.0.1`.
- without `--skip-name-resolve` a TCP login from 127.0.0.1 is matched as `root@localhost`;
- as root, the server runs as the `mysql` user, which must own the temp dir (a `mkdtemp` is 0700 and
  root's: it holds the socket and pid file).
Durability is relaxed only against OS crashes (no doublewrite, no fsync per commit): a killed server
loses no committed transaction, as the restart tests need."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.support.postgres import free_port

USER = "astrago"
PASSWORD = "astrago-tests"


def find_mariadbd() -> Path | None:
    for name in ("mariadbd", "mysqld"):
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
        if found:
            return Path(found)
    return None


@dataclass
class MariaDBServer:
    host: str
    port: int
    socket: Path
    root: Path  # the temp dir holding data, socket and log

    def url(self, database: str, driver: str = "asyncmy") -> str:
        return f"mysql+{driver}://{USER}:{PASSWORD}@{self.host}:{self.port}/{database}?charset=utf8mb4"

    def sql(self, statement: str) -> None:
        subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-u", "root", "-e", statement],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def create_database(self, name: str) -> str:
        self.sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS `{name}`")


def _server_command(mariadbd: Path, data: Path, socket: Path, port: int, as_root: bool) -> list[str]:
    prefix = ["runuser", "-u", "mysql", "--"] if as_root else []
    return [
        *prefix,
        str(mariadbd),
        "--no-defaults",
        f"--datadir={data}",
        f"--socket={socket}",
        f"--pid-file={data.parent / 'mariadb.pid'}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        "--skip-name-resolve",
        "--skip-log-bin",
        "--max-connections=400",
        "--innodb-buffer-pool-size=64M",
        "--innodb-log-file-size=16M",
        # 2: every commit reaches the OS at once (a killed server loses nothing; an OS crash could), but
        # nothing is fsynced; 0 would lose the last second of commits with the process (restart tests)
        "--innodb-flush-log-at-trx-commit=2",
        "--innodb-doublewrite=0",
        "--skip-performance-schema",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
    ]


@dataclass
class MariaDBProcess:
    """The server process; `stop` and `start` again on the same data (for restart tests)."""

    server: MariaDBServer
    command: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {self.log.read_text()[-2000:]}")
            ping = subprocess.run(
                ["mariadb-admin", "--no-defaults", f"--socket={self.server.socket}", "-u", "root", "ping"],
                capture_output=True,
            )
            if ping.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"mariadbd did not answer in {timeout_s:.0f}s: {self.log.read_text()[-2000:]}")

    def stop(self, kill: bool = False) -> None:
        """Stop the server: SIGKILL (`kill`, as a crash) or an orderly SIGTERM. The signal goes to
        mariadbd itself, not only to `runuser`, which would leave the server running."""
        if self.process is None:
            return
        try:
            server = [*psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            server = []
        for process in [*server, psutil.Process(self.process.pid)] if self.process.poll() is None else server:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill() if kill else process.terminate()
        psutil.wait_procs(server, timeout=60)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextlib.contextmanager
def running_mariadb() -> Iterator[MariaDBProcess]:
    mariadbd = find_mariadbd()
    if mariadbd is None:
        raise RuntimeError("MariaDB server not found; install the mariadb-server package (.ci/run does)")
    root = Path(tempfile.mkdtemp(prefix="astrago-mariadb-"))
    root.chmod(0o755)
    data = root / "data"
    as_root = os.geteuid() == 0
    if as_root:  # the server (user mysql) writes its socket and pid file here
        shutil.chown(root, "mysql", "mysql")
    install = [
        "mariadb-install-db",
        "--no-defaults",
        f"--datadir={data}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
    ]
    if as_root:
        install.append("--user=mysql")
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    port = free_port()
    socket = root / "s.sock"
    server = MariaDBServer(host="127.0.0.1", port=port, socket=socket, root=root)
    process = MariaDBProcess(server, _server_command(mariadbd, data, socket, port, as_root), root / "log")
    try:
        process.start()
        server.sql(
            f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; "
            f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1'"
        )
        yield process
    finally:
        process.stop(kill=True)
        shutil.rmtree(root, ignore_errors=True)
