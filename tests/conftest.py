"""Session-wide fixtures: a real PostgreSQL and a real MariaDB next to SQLite for every database test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mariadb import MariaDBProcess, MariaDBServer, find_mariadbd, running_mariadb
from tests.support.postgres import PostgresServer, find_pg_bin, running_postgres

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: real traces and recorded GPU outputs (never copied into the repo)."""
    path = SHARED_DIR / "data"
    if not path.exists():
        pytest.skip("../shared/data is not present beside this checkout")
    return path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if find_pg_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is required in CI; .ci/run installs it")
        pytest.skip("PostgreSQL server binaries not installed")
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_process() -> Iterator[MariaDBProcess]:
    if find_mariadbd() is None:
        if os.environ.get("CI"):
            pytest.fail("MariaDB is required in CI; .ci/run installs it")
        pytest.skip("MariaDB server (mariadb-server) not installed")
    with running_mariadb() as process:
        yield process


@pytest.fixture(scope="session")
def mariadb_server(mariadb_process: MariaDBProcess) -> MariaDBServer:
    return mariadb_process.server


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite in a temp dir, or a new database on the session's PostgreSQL or
    MariaDB."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'astrago.db'}"
        return
    server: PostgresServer | MariaDBServer = request.getfixturevalue(f"{request.param}_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)
