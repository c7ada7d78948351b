"""One real `astrago server` (local backend, temp data dir) for the gateway tests, with the web app of
`webapp.py` running behind it as an interactive workload."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import ADMIN_PASSWORD, ServerProcess, User

WEBAPP = Path(__file__).with_name("webapp.py")
SMALL = {"cpu": "100m", "memory": "256Mi"}  # the test machine may have only 2 cores


@dataclass
class Gateway:
    admin: User
    outsider: User  # a user of no workspace
    viewer: User  # a viewer of the workspace
    workload_id: str

    @property
    def base(self) -> str:
        return f"{self.admin.server.url}/proxy/{self.workload_id}/8000"


@pytest.fixture(scope="package")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("gateway")
    server = ServerProcess(data_dir=root / "data")
    server.start()
    try:
        admin = User(server, "admin", root / "admin")
        admin.login(ADMIN_PASSWORD)
        assert admin.api("POST", "/api/v1/workspaces", json={"name": "web"}).status_code == 201
        outsider = _user(admin, root, "outsider")
        viewer = _user(admin, root, "viewer")
        added = admin.api(
            "PUT", "/api/v1/workspaces/web/members", json={"username": "viewer", "role": "viewer"}
        )
        assert added.status_code in (200, 201), added.text
        workload_id = admin.submit(
            "web", [sys.executable, str(WEBAPP)], kind="interactive", ports=[8000], resources=SMALL
        )
        admin.wait_status(workload_id, "RUNNING", timeout=60)
        yield Gateway(admin, outsider, viewer, workload_id)
    finally:
        server.stop()


def _user(admin: User, root: Path, name: str) -> User:
    created = admin.api("POST", "/api/v1/users", json={"username": name, "password": "password-123"})
    assert created.status_code == 201, created.text
    login = admin.api("POST", "/api/v1/auth/login", json={"username": name, "password": "password-123"})
    return User(admin.server, name, root / name, token=login.json()["token"])
