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


@pytest.fixture
def admin(server: ServerProcess, tmp_path: Path) -> User:
    user = User(server, "admin", tmp_path / "admin-home")
    user.login(ADMIN_PASSWORD)
    return user


@pytest.fixture
def make_user(admin: User, tmp_path: Path) -> Callable[[str], User]:
    def make(name: str, password: str = "password-123") -> User:
        admin.cli("user", "create", name, "--password-stdin", stdin=password)
        user = User(admin.server, name, tmp_path / f"{name}-home")
        user.login(password)
        return user

    return make


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    return Gate(tmp_path / "gates")
