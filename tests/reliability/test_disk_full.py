"""The data directory's disk fills up (a 4 MiB tmpfs mounted as the data dir; needs root, as CI runs):
submits are refused with a clear 507 problem+json and change nothing, reads keep working, and once space
is freed the server carries on with an intact database (`PRAGMA integrity_check`)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ADMIN_PASSWORD, ServerProcess, User

JOB = {"workspace": "ml-a", "command": ["true"], "resources": {"cpu": "100m", "memory": "64Mi"}}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_refuses_writes_clearly_and_corrupts_nothing(tmp_path: Path, small_disk: Path) -> None:
    server = ServerProcess(data_dir=small_disk / "data")
    server.start()
    try:
        admin = User(server, "admin", tmp_path / "home")
        admin.login(ADMIN_PASSWORD)
        admin.cli("workspace", "create", "ml-a")
        before: list[str] = []
        for _ in range(3):
            answer = admin.api("POST", "/api/v1/workloads", json=JOB)
            assert answer.status_code == 201, answer.text
            before.append(answer.json()["id"])
        filler = _fill(small_disk)

        refused = [admin.api("POST", "/api/v1/workloads", json=JOB) for _ in range(5)]
        assert {answer.status_code for answer in refused} == {507}, [a.text for a in refused]
        assert all(a.headers["content-type"].startswith("application/problem+json") for a in refused)
        assert "disk is full" in refused[0].json()["detail"]
        listed = admin.api("GET", "/api/v1/workloads").json()
        assert {item["id"] for item in listed["items"]} == set(before)

        filler.unlink()
        answer = admin.api("POST", "/api/v1/workloads", json=JOB)
        assert answer.status_code == 201, answer.text
    finally:
        server.stop()
    database = sqlite3.connect(small_disk / "data" / "astrago.db")
    try:
        assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert database.execute("SELECT count(*) FROM workloads").fetchone() == (4,)
    finally:
        database.close()
