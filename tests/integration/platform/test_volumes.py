"""Volumes with the real server and CLI: create/list/describe/rename/delete, TUS uploads (checksums,
offsets, termination, expiry, concurrency, quotas), browsing and downloads, and a job reading an uploaded
file at its mount. One server serves the module; each test uses volumes of its own."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest
from tusclient.client import TusClient

from tests.support.server import ADMIN_PASSWORD, ASTRAGO, Gate, ServerProcess, User, wait_for

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_BODY = {"Content-Type": "application/offset+octet-stream"}
JOB = {"resources": {"cpu": "100m", "memory": "64Mi"}}
LOCK_WAIT_BOUND_S = 8.0  # well under the 10 s a writer lock is waited for


def _metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _checksum(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture(scope="module")
def alice(module_admin: User, tmp_path_factory: pytest.TempPathFactory) -> User:
    """A member of workspace `vision` (not an admin), with a logged-in CLI."""
    admin = module_admin
    home = tmp_path_factory.mktemp("alice")
    for name in ("vision", "audio"):
        assert admin.api("POST", "/api/v1/workspaces", json={"name": name}).status_code == 201
    for username in ("alice", "bob"):
        created = admin.api("POST", "/api/v1/users", json={"username": username, "password": "password-123"})
        assert created.status_code == 201
    admin.api("PUT", "/api/v1/workspaces/vision/members", json={"username": "alice", "role": "member"})
    admin.api("PUT", "/api/v1/workspaces/audio/members", json={"username": "bob", "role": "member"})
    user = User(admin.server, "alice", home)
    user.login("password-123")
    return user


@pytest.fixture(scope="module")
def bob(alice: User, tmp_path_factory: pytest.TempPathFactory) -> User:
    user = User(alice.server, "bob", tmp_path_factory.mktemp("bob"))
    user.login("password-123")
    return user


def _volume(user: User, name: str, **fields: Any) -> dict[str, Any]:
    response = user.api("POST", "/api/v1/workspaces/vision/volumes", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _create(user: User, volume: str, length: int, path: str, **headers: str) -> httpx.Response:
    return user.api(
        "POST",
        f"/api/v1/workspaces/vision/volumes/{volume}/uploads",
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": _metadata(path=path), **headers},
    )


def _patch(user: User, url: str, offset: int, data: bytes, **headers: str) -> httpx.Response:
    return user.api(
        "PATCH", url, content=data, headers={**TUS, **OFFSET_BODY, "Upload-Offset": str(offset), **headers}
    )


def _offset(user: User, url: str) -> int:
    response = user.api("HEAD", url, headers=TUS)
    assert response.status_code == 200
    return int(response.headers["Upload-Offset"])


def _audit(admin: User, action: str) -> list[dict[str, Any]]:
    records = admin.api("GET", "/api/v1/audit", params={"limit": 1000}).json()
    return [r for r in records if r["action"] == action]


def test_a_volume_from_creation_to_deletion_with_the_cli(alice: User, module_admin: User) -> None:
    name = "한국어 데이터 v1"
    created = alice.cli(
        "volume", "create", name, "-w", "vision", "--size", "1Gi", "--kind", "model", "--json"
    )
    volume = created.json()
    assert (volume["kind"], volume["size_limit"], volume["slug"]) == ("model", 1024**3, "v1")
    assert volume["env_var"] == "ASTRAGO_VOLUME_V1"
    listed = alice.cli("volume", "ls", "-w", "vision").stdout
    assert name in listed
    assert "1.0 GiB" in listed
    refused = alice.cli("volume", "create", name, "-w", "vision", check=False)
    assert refused.returncode == 1
    assert "already exists" in refused.stderr
    assert "Traceback" not in refused.stderr
    renamed = alice.cli("volume", "rename", name, "weights 2", "-w", "vision").stdout
    assert "ASTRAGO_VOLUME_WEIGHTS_2" in renamed
    described = alice.cli("volume", "describe", "weights 2", "-w", "vision", "--json").json()
    assert (described["name"], described["used_bytes"], described["mounted_by"]) == ("weights 2", 0, [])
    alice.cli("volume", "rm", "weights 2", "-w", "vision", "--yes")
    assert alice.api("GET", "/api/v1/workspaces/vision/volumes/weights 2").status_code == 404
    for action in ("volume.create", "volume.update", "volume.delete"):
        assert any(r["actor"] == "alice" and r["result"] == "ok" for r in _audit(module_admin, action))


def test_other_workspaces_volumes_and_uploads_are_not_found(alice: User, bob: User) -> None:
    _volume(alice, "private")
    created = _create(alice, "private", 10, "x.bin")
    assert created.status_code == 201
    url = created.headers["Location"]
    for method, path in (
        ("GET", "/api/v1/workspaces/vision/volumes"),
        ("GET", "/api/v1/workspaces/vision/volumes/private"),
        ("GET", "/api/v1/workspaces/vision/volumes/private/files"),
        ("DELETE", "/api/v1/workspaces/vision/volumes/private"),
    ):
        assert bob.api(method, path).status_code == 404, (method, path)
    assert _create(bob, "private", 10, "y.bin").status_code == 404
    assert bob.api("HEAD", url, headers=TUS).status_code == 404
    assert _patch(bob, url, 0, b"0123456789").status_code == 404
    assert _offset(alice, url) == 0  # bob wrote nothing


def test_tus_core_creation_checksum_and_termination(alice: User, module_admin: User) -> None:
    _volume(alice, "tus")
    options = alice.api("OPTIONS", "/api/v1/uploads")
    assert options.status_code == 204
    assert "creation-with-upload" in options.headers["Tus-Extension"]
    assert "sha256" in options.headers["Tus-Checksum-Algorithm"]
    openapi = alice.api("GET", "/openapi.json").json()
    assert "460" in openapi["paths"]["/api/v1/uploads/{upload_id}"]["patch"]["responses"]
    assert alice.api("POST", "/api/v1/workspaces/vision/volumes/tus/uploads").status_code == 412
    data = bytes(range(256)) * 40
    created = _create(alice, "tus", len(data), "/sets/a.bin")
    assert created.status_code == 201, created.text
    assert "Upload-Expires" in created.headers
    url = created.headers["Location"]
    assert (
        _patch(alice, url, 0, data[:4000], **{"Upload-Checksum": _checksum(data[:4000])}).status_code == 204
    )
    wrong = _patch(alice, url, 4000, data[4000:8000], **{"Upload-Checksum": _checksum(b"other")})
    assert wrong.status_code == 460
    assert "stays at offset 4000" in wrong.json()["detail"]
    assert _offset(alice, url) == 4000  # the bad chunk was discarded
    stale = _patch(alice, url, 0, data[:10])
    assert stale.status_code == 409
    assert "offset 4000" in stale.json()["detail"]
    past_end = _patch(alice, url, 4000, data[4000:] + b"extra")
    assert past_end.status_code == 413
    assert _patch(alice, url, 4000, b"x", **{"Content-Type": "text/plain"}).status_code == 415
    done = _patch(alice, url, 4000, data[4000:])
    assert (done.status_code, done.headers["Upload-Offset"]) == (204, str(len(data)))
    assert _offset(alice, url) == len(data)  # a client that crashed after the last byte learns it is done
    fetched = alice.api(
        "GET", "/api/v1/workspaces/vision/volumes/tus/download", params={"path": "sets/a.bin"}
    )
    assert fetched.content == data
    # termination
    second = _create(alice, "tus", 100, "b.bin").headers["Location"]
    assert _patch(alice, second, 0, b"x" * 50).status_code == 204
    assert alice.api("DELETE", second, headers=TUS).status_code == 204
    assert alice.api("HEAD", second, headers=TUS).status_code == 404
    assert any("50 of 100 bytes" in (r["detail"] or "") for r in _audit(module_admin, "upload.terminate"))
    # creation-with-upload: a small file in one request
    one = _create(alice, "tus", 5, "c.txt", **OFFSET_BODY, **{"Upload-Checksum": _checksum(b"hello")})
    response = alice.api(
        "POST",
        "/api/v1/workspaces/vision/volumes/tus/uploads",
        content=b"hello",
        headers={**TUS, **OFFSET_BODY, "Upload-Length": "5", "Upload-Metadata": _metadata(path="c.txt")},
    )
    assert one.status_code == 201  # declared a body it did not send: created, nothing written
    assert response.status_code == 409  # the first one still writes c.txt
    alice.api("DELETE", one.headers["Location"], headers=TUS)
    response = alice.api(
        "POST",
        "/api/v1/workspaces/vision/volumes/tus/uploads",
        content=b"hello",
        headers={**TUS, **OFFSET_BODY, "Upload-Length": "5", "Upload-Metadata": _metadata(path="c.txt")},
    )
    assert (response.status_code, response.headers["Upload-Offset"]) == (201, "5")


def test_paths_and_links_that_leave_the_volume_are_refused(alice: User, tmp_path: Path) -> None:
    volume = _volume(alice, "paths")
    for bad in ("../escape", "a/../../escape", "/"):
        response = _create(alice, "paths", 1, bad)
        assert response.status_code == 422, (bad, response.text)
    # a workload with the volume mounted read-write can plant a link to anywhere on the host
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret")
    workspace_id = next((alice.server.data_dir / "volumes").glob(f"*/{volume['id']}")).parent.name
    root = alice.server.data_dir / "volumes" / workspace_id / volume["id"]
    (root / "escape").symlink_to(outside)
    (root / "secret-link").symlink_to(outside / "secret")
    planted = _create(alice, "paths", 5, "escape/planted.txt")
    assert planted.status_code == 201  # the link is only met when the file is put in place
    finished = _patch(alice, planted.headers["Location"], 0, b"owned")
    assert finished.status_code == 409
    assert "symbolic link" in finished.json()["detail"]
    assert not (outside / "planted.txt").exists()
    base = "/api/v1/workspaces/vision/volumes/paths"
    assert alice.api("GET", f"{base}/download", params={"path": "secret-link"}).status_code == 422
    assert alice.api("GET", f"{base}/download", params={"path": "escape/secret"}).status_code == 404
    assert alice.api("GET", f"{base}/files", params={"path": "escape"}).status_code == 404
    assert alice.api("GET", f"{base}/files", params={"path": "../.."}).status_code == 422


def test_limits_refuse_an_upload_before_a_byte_is_written(alice: User, module_admin: User) -> None:
    parts = module_admin.server.data_dir / "volumes" / ".uploads"
    before = set(parts.iterdir())
    _volume(alice, "small", size="1Mi")
    refused = _create(alice, "small", 2 * 1024 * 1024, "big.bin")
    assert refused.status_code == 413
    assert "size limit of 1.0 MiB (1048576 bytes)" in refused.json()["detail"]
    assert "room left: 1048576 bytes" in refused.json()["detail"]
    first = _create(alice, "small", 700_000, "a.bin")
    assert first.status_code == 201
    second = _create(alice, "small", 700_000, "b.bin")  # the first one's length is reserved
    assert second.status_code == 413
    assert "unfinished uploads reserve 700000 more" in second.json()["detail"]
    alice.api("DELETE", first.headers["Location"], headers=TUS)
    # the workspace's storage limit, set with the CLI
    module_admin.cli("quota", "set", "audio", "--storage-guaranteed", "1Mi", "--storage-limit", "2Mi")
    shown = module_admin.cli("quota", "show", "audio").stdout
    assert "storage" in shown
    assert "GiB" in shown
    bob_volume = module_admin.api("POST", "/api/v1/workspaces/audio/volumes", json={"name": "clips"})
    assert bob_volume.status_code == 201
    over = module_admin.api(
        "POST",
        "/api/v1/workspaces/audio/volumes/clips/uploads",
        headers={**TUS, "Upload-Length": str(3 * 1024 * 1024), "Upload-Metadata": _metadata(path="x")},
    )
    assert over.status_code == 413
    assert "workspace 'audio' has a storage limit of 2.0 MiB" in over.json()["detail"]
    too_big = module_admin.api("POST", "/api/v1/workspaces/audio/volumes", json={"name": "v", "size": "3Mi"})
    assert too_big.status_code == 422
    assert set(parts.iterdir()) == before  # refused uploads left nothing behind
    assert any("size limit" in (r["detail"] or "") for r in _audit(module_admin, "upload.create"))


def test_the_cli_says_why_an_upload_is_refused_without_a_traceback(alice: User, tmp_path: Path) -> None:
    _volume(alice, "tight", size="1Mi")
    source = tmp_path / "too-big.bin"
    source.write_bytes(b"x" * 3_000_000)  # above the size sent in one request: the chunked path
    refused = alice.cli("upload", str(source), "tight:/", "-w", "vision", check=False)
    assert refused.returncode == 1
    assert "the server refused the upload: volume 'tight' has a size limit of 1.0 MiB" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = alice.cli("upload", str(source), "no-such-volume:/", "-w", "vision", check=False)
    assert missing.returncode == 1
    assert "no-such-volume" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_concurrent_uploads_into_one_volume_all_land_exactly(alice: User) -> None:
    _volume(alice, "busy")
    payloads = {f"part-{i}.bin": bytes([i]) * (50_000 + i) for i in range(12)}

    def send(item: tuple[str, bytes]) -> int:
        path, data = item
        url = _create(alice, "busy", len(data), path).headers["Location"]
        half = len(data) // 2
        _patch(alice, url, 0, data[:half], **{"Upload-Checksum": _checksum(data[:half])})
        return _patch(
            alice, url, half, data[half:], **{"Upload-Checksum": _checksum(data[half:])}
        ).status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(send, payloads.items())) == {204}
    volume = alice.api("GET", "/api/v1/workspaces/vision/volumes/busy").json()
    assert volume["used_bytes"] == sum(len(d) for d in payloads.values())
    assert volume["used_files"] == 12
    assert volume["uploads"] == []


def test_a_folder_of_1000_files_uploads_lists_and_downloads(alice: User, tmp_path: Path) -> None:
    source = tmp_path / "data"
    for i in range(1000):
        path = source / f"shard-{i % 10}" / f"sample {i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"sample {i}\n" * (i % 7 + 1))
    alice.cli("volume", "create", "many", "-w", "vision")
    done = alice.cli("upload", str(source), "many:/train", "-w", "vision", "--parallel", "8", timeout=240)
    assert "Uploaded 1000 files" in done.stdout
    volume = alice.cli("volume", "describe", "many", "-w", "vision", "--json").json()
    expected_bytes = sum(p.stat().st_size for p in source.rglob("*.txt"))
    assert (volume["used_files"], volume["used_bytes"]) == (1000, expected_bytes)
    listing = alice.cli("volume", "files", "many:/train", "-w", "vision", "--json").json()
    assert [e["name"] for e in listing["entries"]] == [f"shard-{i}" for i in range(10)]
    alice.cli("download", "many:/train/shard-3", str(tmp_path / "back"), "-w", "vision")
    back = sorted(p.name for p in (tmp_path / "back" / "shard-3").iterdir())
    assert back == sorted(p.name for p in (source / "shard-3").iterdir())
    assert (tmp_path / "back/shard-3/sample 3.txt").read_text() == (
        source / "shard-3/sample 3.txt"
    ).read_text()


def test_downloads_honour_ranges(alice: User, tmp_path: Path) -> None:
    _volume(alice, "ranges")
    data = bytes(range(256)) * 100
    url = _create(alice, "ranges", len(data), "r.bin").headers["Location"]
    _patch(alice, url, 0, data)
    base = "/api/v1/workspaces/vision/volumes/ranges/download"
    part = alice.api("GET", base, params={"path": "r.bin"}, headers={"Range": "bytes=100-199"})
    assert (part.status_code, part.content, part.headers["Content-Range"]) == (
        206,
        data[100:200],
        "bytes 100-199/25600",
    )
    tail = alice.api("GET", base, params={"path": "r.bin"}, headers={"Range": "bytes=-10"})
    assert tail.content == data[-10:]
    assert (
        alice.api("GET", base, params={"path": "r.bin"}, headers={"Range": "bytes=99999-"}).status_code == 416
    )
    folder = alice.api("GET", base, params={"path": "/"})
    with tarfile.open(fileobj=io.BytesIO(folder.content)) as archive:
        member = archive.extractfile("ranges/r.bin")
        assert member is not None
        assert member.read() == data
    # the CLI resumes a partial download
    (tmp_path / "r.bin.part").write_bytes(data[:1000])
    alice.cli("download", "ranges:/r.bin", str(tmp_path / "r.bin"), "-w", "vision")
    assert (tmp_path / "r.bin").read_bytes() == data


def test_a_job_reads_an_uploaded_file_at_its_mount(alice: User, tmp_path: Path, module_admin: User) -> None:
    source = tmp_path / "train"
    source.mkdir()
    (source / "hello.txt").write_text("hello from the volume\n")
    alice.cli("volume", "create", "ds", "-w", "vision", "--size", "10Gi")
    alice.cli("upload", str(source), "ds:/train", "-w", "vision")
    # at an absolute path (a bind mount in the job's sandbox) and at a relative one (a link)
    absolute = 'cat /data/train/hello.txt && echo "$ASTRAGO_VOLUME_DS" && ls /data/train'
    relative = 'cat data/train/hello.txt && ls "$ASTRAGO_VOLUME_DS/train"'
    logs = []
    for mount, script in (("ds:/data", absolute), ("ds:data", relative)):
        submitted = alice.cli("run", "-w", "vision", "--volume", mount, "--", "/bin/sh", "-c", script).stdout
        workload_id = submitted.strip().split()[-1]
        finished = alice.wait_status(workload_id, "SUCCEEDED", "FAILED", timeout=30)
        logs.append(alice.cli("logs", workload_id).stdout)
        assert finished["status"] == "SUCCEEDED", logs[-1]
    assert logs[0].splitlines() == ["hello from the volume", "/data", "hello.txt"]
    assert logs[1].splitlines() == ["hello from the volume", "hello.txt"]


def _wait_for_stop(path: str) -> str:
    return f'for _ in $(seq 300); do [ -e "{path}/stop" ] && exit 0; sleep 0.1; done; exit 3'


def test_read_only_mounts_refuse_writes_and_two_workloads_share_a_volume(alice: User) -> None:
    _volume(alice, "shared")
    try_write = 'echo "$0" > "$1/from-$0" && echo wrote || echo refused'
    see_writer = 'until [ -e "$1/from-rw" ]; do sleep 0.1; done; echo saw from-rw'
    writer = ["/bin/sh", "-c", f"{try_write}; {_wait_for_stop('$1')}", "rw", "/data"]
    reader = ["/bin/sh", "-c", f"{try_write}; {see_writer}; {_wait_for_stop('$1')}", "ro", "/models/in"]
    linked = ["/bin/sh", "-c", try_write, "link", "in"]
    jobs = [
        alice.submit("vision", writer, volumes=["shared:/data"], **JOB),
        alice.submit("vision", reader, volumes=["shared:/models/in:ro"], **JOB),
        alice.submit("vision", linked, volumes=["shared:in:ro"], **JOB),
    ]
    for workload_id in jobs[:2]:
        alice.wait_status(workload_id, "RUNNING", timeout=30)  # both mount the volume at once
    stop = _create(alice, "shared", 0, "stop")  # an empty file, complete at creation
    assert stop.status_code == 201, stop.text
    for workload_id in jobs:
        assert alice.wait_status(workload_id, "SUCCEEDED", "FAILED", timeout=30)["status"] == "SUCCEEDED"
    logs = [alice.api("GET", f"/api/v1/workloads/{w}/logs").text for w in jobs]
    assert logs[0].splitlines() == ["wrote"]
    assert "Read-only file system" in logs[1]
    assert logs[1].splitlines()[-2:] == ["refused", "saw from-rw"]
    assert "Read-only file system" in logs[2]
    assert logs[2].splitlines()[-1] == "refused"
    listed = alice.api("GET", "/api/v1/workspaces/vision/volumes/shared/files", params={"path": "/"}).json()
    assert sorted(entry["name"] for entry in listed["entries"]) == ["from-rw", "stop"]


def test_mount_paths_a_local_sandbox_cannot_honour_are_refused_at_submission(alice: User) -> None:
    _volume(alice, "system-paths")
    for mount, reason in (
        ("system-paths:/usr/local/data", "lies inside /usr, a system folder"),
        ("system-paths:/proc/x", "lies inside /proc, a system folder"),
        ("system-paths:/etc", "/etc is a system folder"),
        ("system-paths:/var/lib/data", "would have to be created inside /var/lib"),
    ):
        body = {"workspace": "vision", "command": ["true"], "volumes": [mount], **JOB}
        refused = alice.api("POST", "/api/v1/workloads", json=body)
        assert refused.status_code == 422, (mount, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert reason in refused.json()["detail"], refused.json()


def test_a_mounted_volume_cannot_be_deleted_and_the_refusal_names_the_workload(
    alice: User, tmp_path: Path
) -> None:
    gate = Gate(alice.server.shared_dir / "gates" / tmp_path.name)  # where sandboxed jobs see it
    _volume(alice, "in use")
    workload_id = alice.submit("vision", gate.command(), volumes=["in use:scratch"], name="holder")
    alice.wait_status(workload_id, "RUNNING")
    refused = alice.api("DELETE", "/api/v1/workspaces/vision/volumes/in use")
    assert refused.status_code == 409
    assert f"holder ({workload_id}, RUNNING)" in refused.json()["detail"]
    described = alice.api("GET", "/api/v1/workspaces/vision/volumes/in use").json()
    assert described["mounted_by"][0]["workload_id"] == workload_id
    gate.open(workload_id)
    alice.wait_status(workload_id, "SUCCEEDED")
    assert alice.api("DELETE", "/api/v1/workspaces/vision/volumes/in use").status_code == 204


@pytest.fixture
def expiring_admin(tmp_path: Path) -> Iterator[User]:
    server = ServerProcess(
        data_dir=tmp_path / "data",
        extra_env={"ASTRAGO_UPLOAD_EXPIRY_S": "2", "ASTRAGO_UPLOAD_CLEANUP_INTERVAL_S": "0.3"},
    )
    server.start()
    admin = User(server, "admin", tmp_path / "home")
    admin.login(ADMIN_PASSWORD)
    yield admin
    server.stop()


def test_unfinished_uploads_expire_and_the_cleanup_is_audited(expiring_admin: User) -> None:
    admin = expiring_admin
    admin.api("POST", "/api/v1/workspaces", json={"name": "vision"})
    _volume(admin, "stale")
    url = _create(admin, "stale", 100, "never.bin").headers["Location"]
    assert _patch(admin, url, 0, b"x" * 30).status_code == 204
    wait_for(lambda: admin.api("HEAD", url, headers=TUS).status_code == 404, timeout=20, what="expiry")
    assert list((admin.server.data_dir / "volumes" / ".uploads").iterdir()) == []
    (record,) = _audit(admin, "upload.expire")
    assert record["target"] == "vision/stale:/never.bin"
    assert "30 of 100 bytes" in record["detail"]


def test_a_newer_request_takes_over_from_a_half_open_one(alice: User) -> None:
    """A client that gave up on a request whose connection never broke (no reset reached the server)
    resumes at once: its newer request makes the stale one stop, and keeps what it had received."""
    _volume(alice, "stale-connection")
    data = bytes(range(200)) * 10
    url = _create(alice, "stale-connection", len(data), "a.bin").headers["Location"]
    release = threading.Event()

    def hanging_body() -> Iterator[bytes]:
        yield data[:1000]
        release.wait(30)  # the connection stays open, sending nothing

    def stale_request() -> None:
        # the body ends short of its Content-Length once released: the client library complains, rightly
        with contextlib.suppress(httpx.HTTPError, h11.LocalProtocolError):
            alice.api(
                "PATCH",
                url,
                content=hanging_body(),
                headers={**TUS, **OFFSET_BODY, "Upload-Offset": "0", "Content-Length": str(len(data))},
            )

    stale = threading.Thread(target=stale_request)
    stale.start()
    try:
        time.sleep(1.0)  # the stale request's first 1000 bytes reach the server (held, not yet written)
        started = time.monotonic()
        newer = _patch(alice, url, 0, data)
        assert time.monotonic() - started < LOCK_WAIT_BOUND_S
        assert newer.status_code == 409  # the stale request kept its 1000 bytes: resume from there
        assert "offset 1000" in newer.json()["detail"]
        assert _patch(alice, url, 1000, data[1000:]).status_code == 204
    finally:
        release.set()
        stale.join(30)
    fetched = alice.api(
        "GET", "/api/v1/workspaces/vision/volumes/stale-connection/download", params={"path": "a.bin"}
    )
    assert fetched.content == data


@pytest.fixture
def small_disk_admin(tmp_path: Path) -> Iterator[User]:
    """A server whose volumes live on an 8 MiB tmpfs, mounted in a private mount namespace (an
    unprivileged user namespace: `unshare -rm`), so that the disk really fills up."""
    volumes = tmp_path / "small-disk"
    volumes.mkdir()
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unprivileged mount namespaces are not available here: {probe.stderr.decode()}")
    server = ServerProcess(data_dir=tmp_path / "data", extra_env={"ASTRAGO_VOLUMES_DIR": str(volumes)})
    server.data_dir.mkdir()
    server.shared_dir.mkdir()  # what ServerProcess.start makes: the directory every sandboxed job sees
    server.shared_dir.chmod(0o777)
    mount = 'mount -t tmpfs -o size=8m tmpfs "$0" && exec "$@"'
    command = [
        "unshare",
        "-rm",
        "sh",
        "-c",
        mount,
        str(volumes),
        *ASTRAGO,
        "server",
        "--port",
        str(server.port),
    ]
    log = (tmp_path / "server.log").open("wb")
    server.process = subprocess.Popen(command, env=server.env(), stdout=log, stderr=subprocess.STDOUT)
    server.log_path = tmp_path / "server.log"
    wait_for(lambda: _ready(server), timeout=30, what="the server")
    admin = User(server, "admin", tmp_path / "home")
    admin.login(ADMIN_PASSWORD)
    yield admin
    server.stop()


def _ready(server: ServerProcess) -> bool:
    try:
        return httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_full_disk_fails_the_chunk_clearly_and_the_volume_stays_consistent(small_disk_admin: User) -> None:
    admin = small_disk_admin
    admin.api("POST", "/api/v1/workspaces", json={"name": "vision"})
    _volume(admin, "first")
    _volume(admin, "second")
    five = b"5" * (5 * 1024 * 1024)
    refused = _create(admin, "first", 9 * 1024 * 1024, "too-big.bin")
    assert refused.status_code == 507  # known at creation: more than the disk has free
    assert "free" in refused.json()["detail"]
    a = _create(admin, "first", len(five), "a.bin").headers["Location"]
    b = _create(admin, "second", len(five), "b.bin").headers["Location"]  # the disk is still empty
    assert _patch(admin, a, 0, five).status_code == 204
    full = _patch(admin, b, 0, five)
    assert full.status_code == 507
    assert "disk holding volumes is full" in full.json()["detail"]
    assert _offset(admin, b) == 0  # rolled back to where the chunk started: nothing half-written kept
    listing = admin.api("GET", "/api/v1/workspaces/vision/volumes/second/files").json()
    assert listing["entries"] == []
    first = admin.api("GET", "/api/v1/workspaces/vision/volumes/first/download", params={"path": "a.bin"})
    assert first.content == five
    assert admin.api("DELETE", "/api/v1/workspaces/vision/volumes/first").status_code == 204  # room again
    assert _patch(admin, b, 0, five).status_code == 204
    second = admin.api("GET", "/api/v1/workspaces/vision/volumes/second/download", params={"path": "b.bin"})
    assert second.content == five


TUS_JS = Path(__file__).resolve().parents[2] / "support" / "tus_js"


def _tus_js(*args: str) -> dict[str, Any]:
    """Run tus-js-client (the browser console's TUS client) under Node; `make test` installs it."""
    done = subprocess.run(
        ["node", str(TUS_JS / "upload.mjs"), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_tus_js_client_uploads_and_resumes(alice: User, tmp_path: Path) -> None:
    _volume(alice, "browser")
    data = bytes(range(251)) * 20_000  # 5 MB: five chunks of 1 MiB
    source = tmp_path / "from-browser.bin"
    source.write_bytes(data)
    endpoint = f"{alice.server.url}/api/v1/workspaces/vision/volumes/browser/uploads"
    assert alice.token is not None
    stopped = _tus_js(endpoint, alice.token, str(source), "web/from-browser.bin", "--stop-after-first-chunk")
    assert stopped["offset"] == 1024 * 1024
    assert _offset(alice, stopped["url"]) >= 1024 * 1024  # kept on the server, fsync'd
    finished = _tus_js(endpoint, alice.token, str(source), "web/from-browser.bin", "--resume", stopped["url"])
    assert finished["url"] == stopped["url"]  # the same upload, resumed
    assert finished["chunks"] < 5
    fetched = alice.api(
        "GET", "/api/v1/workspaces/vision/volumes/browser/download", params={"path": "web/from-browser.bin"}
    )
    assert fetched.content == data


def test_tuspy_uploads_and_resumes(alice: User, tmp_path: Path) -> None:
    """Another client than ours: tuspy (the Python reference client, with its default sha1 checksums)
    uploads in chunks, stops, and a new uploader resumes the same upload from the server's offset."""
    _volume(alice, "tuspy")
    data = bytes(range(253)) * 12_000  # 3 MB: three chunks of 1 MiB
    source = tmp_path / "from-tuspy.bin"
    source.write_bytes(data)
    endpoint = f"{alice.server.url}/api/v1/workspaces/vision/volumes/tuspy/uploads"
    client = TusClient(endpoint, headers={"Authorization": f"Bearer {alice.token}"})
    metadata = {"path": "py/from-tuspy.bin"}
    first = client.uploader(
        file_path=str(source), chunk_size=1024 * 1024, metadata=metadata, upload_checksum=True
    )
    first.upload_chunk()
    assert first.url is not None
    assert _offset(alice, first.url) == 1024 * 1024
    resumed = client.uploader(
        file_path=str(source), url=first.url, chunk_size=1024 * 1024, upload_checksum=True
    )
    assert resumed.offset == 1024 * 1024  # asked the server (HEAD), not started over
    resumed.upload()
    fetched = alice.api(
        "GET", "/api/v1/workspaces/vision/volumes/tuspy/download", params={"path": "py/from-tuspy.bin"}
    )
    assert fetched.content == data
