"""Pods fetch their code bundle from the API with a download credential for that bundle and workload only.

A real `astrago server` (local backend) serves the archive; the credentials are made as the Kubernetes
backend makes them for a workload's init container, and the init container's own program downloads and
unpacks the bundle here, against that server."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from astrago.auth.code_credentials import issue
from astrago.backends.kubernetes.manifests import CODE_FETCH_SCRIPT
from tests.support.server import Gate, ServerProcess, User

KEY = "a-key-every-server-process-shares"
HEADER = "X-AstraGo-Code-Credential"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """The platform's server, with the credential key set as the chart sets it for every process."""
    process = ServerProcess(data_dir=tmp_path / "data", extra_env={"ASTRAGO_CODE_CREDENTIAL_KEY": KEY})
    process.start()
    yield process
    process.stop()


def bundle(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def upload(user: User, content: bytes) -> str:
    response = user.api("POST", "/api/v1/code-bundles", content=content)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def credential(bundle_id: str, workload_id: str, expires_in: float = 600) -> str:
    return issue(KEY.encode(), bundle_id, workload_id, int(time.time() + expires_in))


def fetch(user: User, bundle_id: str, token: str | None) -> tuple[int, bytes, str]:
    headers = {HEADER: token} if token is not None else {}
    with user.http as client:
        client.headers.pop("Authorization")
        response = client.get(f"/api/v1/code-bundles/{bundle_id}/archive", headers=headers)
    return response.status_code, response.content, response.text


def run_fetcher(url: str, token: str, target: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ASTRAGO_CODE_URL": url,
        "ASTRAGO_CODE_CREDENTIAL": token,
        "ASTRAGO_CODE_DIR": str(target),
    }
    return subprocess.run(
        [sys.executable, "-c", CODE_FETCH_SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_workloads_credential_fetches_its_bundle_and_nothing_else(
    admin: User, tmp_path: Path, gate: Gate, make_user: Callable[[str], User]
) -> None:
    code = bundle({"train.py": "print('hi')\n", "src/helper.py": "X = 1\n"})
    ours, other = upload(admin, code), upload(admin, bundle({"other.py": ""}))
    workload = admin.submit("default", gate.command(), code=ours)
    admin.wait_status(workload, "RUNNING")
    token = credential(ours, workload)

    status, body, _ = fetch(admin, ours, token)
    assert (status, body) == (200, code)

    # The init container's program, against the real server: the tree arrives as uploaded.
    url = f"{admin.server.url}/api/v1/code-bundles/{ours}/archive"
    fetched = run_fetcher(url, token, tmp_path / "code")
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "code" / "train.py").read_text() == "print('hi')\n"
    assert (tmp_path / "code" / "src" / "helper.py").read_text() == "X = 1\n"

    refused = {
        "another bundle's credential": (ours, credential(other, workload)),
        "this credential on another bundle": (other, token),
        "an expired credential": (ours, credential(ours, workload, expires_in=-1)),
        "a tampered credential": (ours, token[:-4] + "0000"),
        "another workload's credential": (ours, credential(ours, "not-a-workload")),
        "a user's login token": (ours, admin.token or ""),
    }
    for what, (bundle_id, wrong) in refused.items():
        status, _, text = fetch(admin, bundle_id, wrong)
        assert status == 403, (what, text)
    assert "expired" in fetch(admin, ours, credential(ours, workload, expires_in=-1))[2]
    with httpx.Client(base_url=admin.server.url) as anonymous:
        problem = anonymous.get(f"/api/v1/code-bundles/{ours}/archive", headers={HEADER: "wl.soon.x"})
        openapi = anonymous.get("/openapi.json").json()
    assert problem.headers["content-type"].startswith("application/problem+json")
    assert "malformed" in problem.json()["detail"]
    operation = openapi["paths"]["/api/v1/code-bundles/{bundle_id}/archive"]["get"]
    assert HEADER in {parameter["name"] for parameter in operation["parameters"]}
    bad = run_fetcher(url, credential(other, workload), tmp_path / "refused")
    assert bad.returncode != 0
    assert "the server refused the code bundle download (403)" in bad.stderr

    # Without a credential, the uploader may read it back; others see nothing; no login, no archive.
    assert admin.api("GET", f"/api/v1/code-bundles/{ours}/archive").content == code
    stranger = make_user("stranger")
    assert stranger.api("GET", f"/api/v1/code-bundles/{ours}/archive").status_code == 404
    assert fetch(admin, ours, None)[0] == 401

    # The credential ends with its workload.
    assert admin.api("POST", f"/api/v1/workloads/{workload}/cancel").status_code in (200, 202)
    admin.wait_status(workload, "CANCELLED")
    status, _, text = fetch(admin, ours, token)
    assert status == 403
    assert "has ended" in text
