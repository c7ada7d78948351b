"""A real `astrago server` (subprocess, 4 simulated A100s, temp data dir) and users driving the real CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.server import ADMIN_PASSWORD, Gate, ServerProcess, User


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(data_dir=tmp_path / "data")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def module_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[User]:
    """One server and admin for a whole module, for tests that change nothing (e.g. refused input)."""
    root = tmp_path_factory.mktemp("module-server")
    process = ServerProcess(data_dir=root / "data")
    process.start()
    user = User(process, "admin", root / "admin-home")
    user.login(ADMIN_PASSWORD)
    yield user
    process.stop()


@pytest.fixture
def admin(server: ServerProcess, tmp_path: Path) -> User:
    user = User(server, "admin", tmp_path / "admin-home")
    user.login(ADMIN_PASSWORD)
    return user


@pytest.fixture
def make_user(admin: User, tmp_path: Path) -> Callable[[str], User]:
    """A user created and logged in over HTTP (fast setup; the CLI paths have their own tests)."""

    def make(name: str, password: str = "password-123") -> User:
        created = admin.api("POST", "/api/v1/users", json={"username": name, "password": password})
        assert created.status_code == 201, created.text
        login = admin.api("POST", "/api/v1/auth/login", json={"username": name, "password": password})
        return User(admin.server, name, tmp_path / f"{name}-home", token=login.json()["token"])

    return make


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    gates = Gate(tmp_path / "shared" / "gates")  # in ServerProcess.shared_dir
    yield gates
    gates.open_all()  # jobs outlive the server by design; let every gated job end
