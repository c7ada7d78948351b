"""A terminal in a Kubernetes replica through the pod's exec subresource (v4.channel.k8s.io): keys in on
channel 0, output on channel 1, window sizes on channel 4, the exit code from the status on channel 3.

The Kubernetes API is the kmock emulator; it has no container runtime, so fake_cluster serves a TTY exec
by running the command on a real pseudo-terminal of the test machine, as a kubelet runs it in the
container. What is checked is AstraGo's side: the framing, resize, exit codes and the session's end."""

from __future__ import annotations

import asyncio

import pytest

from astrago.backends.base import BackendError, ExecRequest, ExecSession
from astrago.backends.kubernetes import KubernetesBackend
from astrago.domain.enums import ReplicaState
from tests.integration.backends.kubernetes.fake_cluster import FakeCluster, eventually
from tests.integration.backends.kubernetes.test_backend import started_pods
from tests.unit.backends.kubernetes.factories import launch_spec

SHELL = ("/bin/sh",)


class Screen:
    """Everything the terminal printed, read in the background."""

    def __init__(self, session: ExecSession) -> None:
        self.text = ""
        self._task = asyncio.create_task(self._read(session))

    async def _read(self, session: ExecSession) -> None:
        async for _, data in session.output():
            self.text += data.decode(errors="replace")

    async def shows(self, expected: str) -> None:
        await eventually(lambda: expected in self.text, attempts=500)

    async def closed(self) -> None:
        await asyncio.wait_for(self._task, 10)


async def test_a_terminal_resizes_and_ends_with_the_commands_exit_code(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    await backend.start(launch_spec())
    (pod,) = await started_pods(cluster)
    await _seen_running(backend)
    session = await backend.open_exec("wl-1", 0, ExecRequest(argv=SHELL, tty=True, rows=30, cols=100))
    screen = Screen(session)
    try:
        await session.send(b"stty size\n")
        await screen.shows("30 100")  # the size asked for at the start
        await session.resize(40, 132)
        await session.send(b"stty size\n")
        await screen.shows("40 132")
        await session.send(b"exit 3\n")
        await screen.closed()
        assert await session.wait() == 3
    finally:
        await session.kill()
    assert cluster.api.terminals == [(pod, list(SHELL), "main")]


async def test_a_killed_terminal_ends_its_command(cluster: FakeCluster, backend: KubernetesBackend) -> None:
    await backend.start(launch_spec())
    await started_pods(cluster)
    await _seen_running(backend)
    session = await backend.open_exec("wl-1", 0, ExecRequest(argv=SHELL, tty=True))
    screen = Screen(session)
    await session.send(b"echo h''i\n")
    await screen.shows("hi")
    await session.kill()  # the caller went away
    await screen.closed()
    assert await session.wait() == 137


async def test_no_terminal_in_a_replica_without_a_running_pod(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    await backend.start(launch_spec())
    await started_pods(cluster, run=False)
    await eventually(lambda: backend._pod_for("wl-1", 0) is not None)
    with pytest.raises(BackendError, match="has no running pod"):
        await backend.open_exec("wl-1", 0, ExecRequest(argv=SHELL, tty=True))


async def _seen_running(backend: KubernetesBackend) -> None:
    async def running() -> bool:
        return [o.state for o in await backend.observe()] == [ReplicaState.RUNNING]

    await eventually(running)
