"""A Kubernetes API server that fails for a while, against the kmock emulator (fake_cluster.py; no real
API server runs here): its 5xx answers are BackendUnavailable (the controller retries the start later),
refusals such as 403 stay BackendError (the workload fails with the reason), and a start retried after the
outage creates its objects once."""

from __future__ import annotations

import pytest

from astrago.backends.base import BackendError, BackendUnavailable
from astrago.backends.kubernetes import KubernetesBackend
from tests.integration.backends.kubernetes.fake_cluster import FakeCluster
from tests.unit.backends.kubernetes.factories import launch_spec

JOBS = "/apis/batch/v1/namespaces/astrago/jobs"


async def test_a_failing_api_server_is_unavailable_and_the_retry_creates_once(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    cluster.api.broken.add(("create", "jobs"))
    with pytest.raises(BackendUnavailable, match="answered 500"):
        await backend.start(launch_spec(workload_id="w1"))
    assert await cluster.kubelet.list(JOBS) == []
    cluster.api.broken.discard(("create", "jobs"))
    await backend.start(launch_spec(workload_id="w1"))
    await backend.start(launch_spec(workload_id="w1"))  # the controller may retry once more: adopted
    assert len(await cluster.kubelet.list(JOBS)) == 1


async def test_a_refusal_is_not_retried(cluster: FakeCluster, backend: KubernetesBackend) -> None:
    cluster.api.denied.add(("create", "jobs"))
    with pytest.raises(BackendError, match="permission denied") as refused:
        await backend.start(launch_spec(workload_id="w1"))
    assert not isinstance(refused.value, BackendUnavailable)
