"""The database restarted under load: a real `astrago server` on a real PostgreSQL or MariaDB, clients
submitting all along, the database server stopped at once (as a crash) and started again. While it is
down, submits are refused with a problem+json answer; once it is back the server reconnects by itself;
every acknowledged submit is kept exactly once, and no running job is started twice."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.mariadb import MariaDBProcess
from tests.support.postgres import PostgresServer
from tests.support.server import ADMIN_PASSWORD, Gate, ServerProcess, User, wait_for

GPU_JOB = {"resources": {"gpus": 1, "cpu": "100m", "memory": "64Mi"}}
OUTAGE_S = 3.0


@dataclass
class Database:
    url: str
    stop: Callable[[], None]
    start: Callable[[], None]


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    name = f"restart_{uuid.uuid4().hex[:8]}"
    if request.param == "postgres":
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        yield Database(postgres.create_database(name), postgres.stop, postgres.start)
        postgres.drop_database(name)
        return
    mariadb: MariaDBProcess = request.getfixturevalue("mariadb_process")
    yield Database(mariadb.server.create_database(name), lambda: mariadb.stop(kill=True), mariadb.start)
    mariadb.server.drop_database(name)


@dataclass
class Submitter:
    """Submits one workload after another until stopped, recording each answer."""

    admin: User
    acknowledged: list[str] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (status, content type)
    dropped: list[str] = field(default_factory=list)  # no answer at all
    done: threading.Event = field(default_factory=threading.Event)

    longest_s: float = 0.0  # the slowest answer (a submit held while the database was down)

    def run(self) -> None:
        body = {"workspace": "ml-a", "command": ["true"], **GPU_JOB}
        with self.admin.http as client:
            while not self.done.is_set():
                began = time.monotonic()
                try:
                    answer = client.post("/api/v1/workloads", json=body, timeout=30)
                    self.longest_s = max(self.longest_s, time.monotonic() - began)
                except httpx.HTTPError as exc:
                    self.dropped.append(type(exc).__name__)
                    time.sleep(0.05)
                    continue
                if answer.status_code == 201:
                    self.acknowledged.append(answer.json()["id"])
                else:
                    self.refused.append((answer.status_code, answer.headers.get("content-type", "")))
                    time.sleep(0.05)


def _all_ids(admin: User) -> list[str]:
    ids: list[str] = []
    cursor: int | None = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = admin.api("GET", "/api/v1/workloads", params=params).json()
        ids += [item["id"] for item in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return ids


def test_a_database_restart_under_load_loses_nothing_and_starts_nothing_twice(
    tmp_path: Path, database: Database
) -> None:
    gate = Gate(tmp_path / "shared" / "gates")  # in ServerProcess.shared_dir, where sandboxed jobs see it
    server = ServerProcess(data_dir=tmp_path / "data", database_url=database.url)
    server.start()
    try:
        admin = User(server, "admin", tmp_path / "home")
        admin.login(ADMIN_PASSWORD)
        admin.cli("workspace", "create", "ml-a")
        running = [admin.submit("ml-a", gate.command(), **GPU_JOB) for _ in range(4)]
        for workload_id in running:
            admin.wait_status(workload_id, "RUNNING")

        submitter = Submitter(admin)
        thread = threading.Thread(target=submitter.run)
        thread.start()
        try:
            wait_for(lambda: len(submitter.acknowledged) >= 5, what="submits before the outage")
            database.stop()
            time.sleep(OUTAGE_S)
            database.start()
            after = len(submitter.acknowledged)
            wait_for(
                lambda: len(submitter.acknowledged) >= after + 10,
                timeout=60,
                what="submits after the restart",
            )
        finally:
            submitter.done.set()
            thread.join(60)

        assert httpx.get(f"{server.url}/readyz").status_code == 200
        stored = _all_ids(admin)
        print(  # the figures for the record (pytest -s shows them)
            f"\n{database.url.split(':')[0]}: {len(submitter.acknowledged)} acknowledged, "
            f"{len(stored)} stored, {len(submitter.refused)} refused during a {OUTAGE_S:g}s outage "
            f"({sorted({status for status, _ in submitter.refused})}), {len(submitter.dropped)} dropped, "
            f"slowest answer {submitter.longest_s:.1f}s"
        )
        assert len(stored) == len(set(stored)), "a workload is stored twice"
        missing = set(submitter.acknowledged) - set(stored)
        assert not missing, f"acknowledged but lost: {sorted(missing)}"
        # a submit during the outage either waits for the database or is refused with a 503 to retry
        assert all(kind.startswith("application/problem+json") for _, kind in submitter.refused)
        assert {status for status, _ in submitter.refused} <= {503}
        assert submitter.dropped == []

        for workload_id in running:
            gate.open(workload_id)
        for workload_id in running:
            admin.wait_status(workload_id, "SUCCEEDED", timeout=60)
            assert len(gate.starts(workload_id)) == 1, f"{workload_id} started {gate.starts(workload_id)}"
    finally:
        server.stop()
