"""Interactive workloads on the local executor, with real processes: host ports allocated per requested
port, readiness before RUNNING, a clear failure for a command that never listens, JupyterLab by default."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest

from astrago.backends.base import BackendError
from astrago.backends.local import LocalBackend
from astrago.domain.enums import ReplicaState, WorkloadKind
from tests.integration.backends.local.support import GUARD_S, Outcomes
from tests.unit.backends.local.factories import launch_spec, python_command

SERVE_ON_PORT = python_command(
    "import http.server, json, os, threading\n"
    "ports = os.environ['ASTRAGO_PORTS']\n"
    "class Handler(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = json.dumps({'id': os.environ['ASTRAGO_WORKLOAD_ID'], 'ports': ports}).encode()\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
    "for port in ports.split(',')[1:]:\n"
    "    server = http.server.HTTPServer(('127.0.0.1', int(port)), Handler)\n"
    "    threading.Thread(target=server.serve_forever, daemon=True).start()\n"
    "print('listening on', os.environ['PORT'], flush=True)\n"
    "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), Handler).serve_forever()\n"
)


async def running(backend: LocalBackend, workload_id: str) -> None:
    """Wait for RUNNING: for a workload with ports, that means its ports answer."""
    async with asyncio.timeout(GUARD_S):
        while True:
            states = [o.state for o in await backend.observe() if o.workload_id == workload_id]
            assert all(state in (ReplicaState.STARTING, ReplicaState.RUNNING) for state in states), states
            if states and all(state is ReplicaState.RUNNING for state in states):
                return
            await asyncio.sleep(0.05)


async def test_two_workloads_asking_for_the_same_port_both_run(backend: LocalBackend) -> None:
    await backend.start(
        launch_spec(*SERVE_ON_PORT, workload_id="a", kind=WorkloadKind.INTERACTIVE, ports=(8000,))
    )
    await backend.start(
        launch_spec(*SERVE_ON_PORT, workload_id="b", kind=WorkloadKind.INTERACTIVE, ports=(8000, 9000))
    )
    await running(backend, "a")
    await running(backend, "b")
    (a,) = await backend.endpoints("a")
    b_first, b_second = await backend.endpoints("b")
    assert (a.port, b_first.port, b_second.port) == (8000, 8000, 9000)
    assert len({a.target_port, b_first.target_port, b_second.target_port}) == 3
    assert a.ready
    assert b_first.ready
    async with httpx.AsyncClient() as client:
        answer_a = (await client.get(f"http://127.0.0.1:{a.target_port}/")).json()
        answer_b = (await client.get(f"http://127.0.0.1:{b_first.target_port}/")).json()
    assert answer_a == {"id": "a", "ports": str(a.target_port)}
    assert answer_b == {"id": "b", "ports": f"{b_first.target_port},{b_second.target_port}"}


async def test_a_command_that_never_listens_fails_with_its_last_log_lines(
    backend: LocalBackend, outcomes: Outcomes
) -> None:
    never = python_command("import time\nprint('loading the model...', flush=True)\ntime.sleep(60)")
    spec = launch_spec(*never, kind=WorkloadKind.INTERACTIVE, ports=(8000,), extra={"readiness_timeout": "1"})
    await backend.start(spec)
    (endpoint,) = await backend.endpoints("wl-1")
    assert not endpoint.ready
    final = await outcomes.final("wl-1")
    assert final.state is ReplicaState.FAILED
    assert final.reason is not None
    assert final.reason.startswith(
        f"not ready after 1s: nothing accepts connections on port {endpoint.target_port}"
    )
    assert "last log lines:\nloading the model..." in final.reason
    assert await backend.endpoints("wl-1") == []


async def test_a_health_path_must_answer_before_it_is_running(
    backend: LocalBackend, outcomes: Outcomes
) -> None:
    spec = launch_spec(
        *SERVE_ON_PORT,
        kind=WorkloadKind.INTERACTIVE,
        ports=(8000,),
        extra={"readiness_timeout": "30", "health_path": "/healthz"},
    )
    await backend.start(spec)
    await running(backend, "wl-1")  # this server answers 200 on every path


async def test_a_notebook_without_jupyterlab_is_refused_clearly(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # a server environment without it
    spec = launch_spec(kind=WorkloadKind.INTERACTIVE, ports=(8888,), env={"PATH": "/nonexistent"})
    with pytest.raises(BackendError, match="starts JupyterLab, but jupyter-lab is not installed"):
        await backend.start(spec)
    assert await backend.observe() == []


async def test_bad_readiness_options_are_refused(backend: LocalBackend) -> None:
    spec = launch_spec(
        *SERVE_ON_PORT, kind=WorkloadKind.INTERACTIVE, ports=(8000,), extra={"health_path": "x"}
    )
    with pytest.raises(BackendError, match="health_path must start with '/'"):
        await backend.start(spec)
