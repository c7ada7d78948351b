"""`kill -9` of the server while jobs run: after a restart nothing is lost and nothing starts twice.

Runs on SQLite and on a real PostgreSQL and MariaDB."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.mariadb import MariaDBServer
from tests.support.postgres import PostgresServer
from tests.support.server import ADMIN_PASSWORD, Gate, ServerProcess, User, wait_for

JOB = {"resources": {"gpus": 1, "cpu": "100m", "memory": "64Mi"}}


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None  # the default: SQLite in the data dir
        return
    server: PostgresServer | MariaDBServer = request.getfixturevalue(f"{request.param}_server")
    name = f"restart_{uuid.uuid4().hex[:8]}"
    yield server.create_database(name)
    server.drop_database(name)


def test_kill9_restart_adopts_running_jobs_and_starts_none_twice(
    tmp_path: Path, database: str | None
) -> None:
    gate = Gate(tmp_path / "shared" / "gates")
    server = ServerProcess(data_dir=tmp_path / "data", database_url=database)
    server.start()
    try:
        admin = User(server, "admin", tmp_path / "home")
        admin.login(ADMIN_PASSWORD)
        admin.cli("workspace", "create", "ml-a")
        running = [admin.submit("ml-a", gate.command(), **JOB) for _ in range(4)]
        for workload_id in running:
            admin.wait_status(workload_id, "RUNNING")
        queued = admin.submit("ml-a", gate.command(), **JOB)
        wait_for(lambda: admin.workload(queued)["queue_position"] == 1, what="the fifth job to queue")

        server.kill9()
        gate.open(running[0])  # finishes while the server is down: its exit code must not be lost
        server.start()

        finished = admin.wait_status(running[0], "SUCCEEDED")
        assert finished["placements"][0]["exit_code"] == 0
        for workload_id in running[1:]:
            assert admin.workload(workload_id)["status"] == "RUNNING"
        admin.wait_status(queued, "RUNNING")  # the GPU freed by running[0] goes to the queued job

        for workload_id in [*running[1:], queued]:
            gate.open(workload_id)
        for workload_id in [*running, queued]:
            admin.wait_status(workload_id, "SUCCEEDED")
            assert len(gate.starts(workload_id)) == 1, f"{workload_id} started {gate.starts(workload_id)}"
    finally:
        server.stop()


def test_job_whose_process_vanished_while_the_server_was_down_is_marked_lost(tmp_path: Path) -> None:
    gate = Gate(tmp_path / "shared" / "gates")
    server = ServerProcess(data_dir=tmp_path / "data")
    server.start()
    try:
        admin = User(server, "admin", tmp_path / "home")
        admin.login(ADMIN_PASSWORD)
        admin.cli("workspace", "create", "ml-a")
        workload_id = admin.submit("ml-a", gate.command(), **JOB)
        admin.wait_status(workload_id, "RUNNING")
        # RUNNING means its process exists; on a loaded machine its shell may not have run a line yet
        wait_for(lambda: gate.starts(workload_id), what="the job's first line")
        server.kill9()
        _kill_process_group_of(workload_id, tmp_path / "data")
        server.start()
        failed = admin.wait_status(workload_id, "FAILED")
        assert failed["reason"], failed
        assert len(gate.starts(workload_id)) == 1
    finally:
        server.stop()


def _kill_process_group_of(workload_id: str, data_dir: Path) -> None:
    """Kill everything of the job (runner included), as an OOM killer or a reboot would."""
    for process in psutil.process_iter(["pid"]):
        try:
            if process.environ().get("ASTRAGO_WORKLOAD_ID") == workload_id:
                os.killpg(os.getpgid(process.pid), signal.SIGKILL)
        except (psutil.Error, ProcessLookupError):
            continue
    assert data_dir.exists()
