"""The typed Python client, as a script uses it (the CLI's tests cover the same calls through `astrago`)."""

from __future__ import annotations

import pytest

from astrago.client import ApiError, Client, ServerUnreachable
from astrago.domain.enums import WorkloadStatus
from astrago.services.schemas import WorkloadSubmit
from tests.support.postgres import free_port
from tests.support.server import User


def test_submit_wait_and_read_logs_with_typed_models(module_admin: User) -> None:
    with Client(module_admin.server.url, module_admin.token) as client:
        job = client.submit(WorkloadSubmit(workspace="default", command=["sh", "-c", "echo hi; exit 4"]))
        done = client.wait(job.id, timeout=60, poll_s=0.2)
        assert done.status is WorkloadStatus.FAILED
        assert done.placements[0].exit_code == 4
        assert client.logs(job.id) == "hi\n"
        assert next(e.type for e in client.events(job.id)) == "Submitted"

        with pytest.raises(ApiError) as refused:
            client.submit({"workspace": "default", "command": ["true"], "replicas": 0})
        assert refused.value.status == 422
        assert refused.value.errors == ["replicas must be ≥ 1, not 0"]


def test_an_unreachable_server_is_one_error() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", "token") as client, pytest.raises(ServerUnreachable):
        client.nodes()
