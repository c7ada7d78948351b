"""A Kubernetes API server that fails, then is slow, under a running `astrago server --backend kubernetes`.

The cluster is the kmock emulator (tests/integration/backends/kubernetes/fake_cluster.py: no real API
server can run on the test machines) played by its autopilot; `ApiServer.fault` makes it answer AstraGo's
requests with 500s, or late, while the test's own kubelet keeps working. The scenario, shared by the fast
test in `make test` and the long run in benchmarks/faults:

1. submit a first wave and let it start;
2. the API answers every request with 500 (and drops the open watches, as a restarting API server does)
   for `error_s`, while a second wave is submitted;
3. then answers every request only after `slow_delay_s` (past the client's 10 s timeout: timeouts) for
   `slow_s`, while a third wave is submitted;
4. the API is healthy again: every workload must succeed, each started once.

What it measures is returned as `OutageReport`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.integration.backends.kubernetes.fake_cluster import (
    NAMESPACE,
    ApiFault,
    FakeCluster,
    autopilot,
    running_cluster,
)
from tests.support.kubernetes_server import kubernetes_server
from tests.support.server import ADMIN_PASSWORD

FINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "PREEMPTED")


@dataclass
class OutageReport:
    submitted: list[str] = field(default_factory=list)
    final_status: dict[str, str] = field(default_factory=dict)
    jobs_created: dict[str, int] = field(default_factory=dict)  # Job name → creations that succeeded
    faulted_requests: int = 0  # AstraGo's requests the API failed or delayed
    api_answers_during_fault: dict[int, int] = field(default_factory=dict)  # AstraGo's own status → count
    dropped_connections: int = 0  # AstraGo's answers lost to a closed connection (reads retried once)
    kubelet_hiccups: int = 0  # the emulated kubelet's own failed requests (it carries on)
    slowest_api_answer_s: float = 0.0  # of AstraGo's API (submits, lists) during the faults
    recovery_s: float = 0.0  # from the Kubernetes API's return to every workload finished
    server_alive: bool = True
    server_log: str = ""


class _Api:
    """AstraGo's API as a user drives it, timing every answer."""

    def __init__(self, client: httpx.AsyncClient, report: OutageReport) -> None:
        self.client = client
        self.report = report
        self.during_fault = False

    async def call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        started = time.monotonic()
        try:
            response = await self.client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except (httpx.RemoteProtocolError, httpx.ReadError):
            # A kept-alive connection the server closed as the request went out (uvicorn closes one idle
            # for 5 s, and a stalled event loop can make that late): a client retries a read; a submit
            # is not retried (it could be stored twice), so it fails the run.
            self.report.dropped_connections += 1
            if method != "GET":
                raise
            response = await self.client.request(method, path, **kwargs)  # type: ignore[arg-type]
        if self.during_fault:
            answers = self.report.api_answers_during_fault
            answers[response.status_code] = answers.get(response.status_code, 0) + 1
            elapsed = time.monotonic() - started
            self.report.slowest_api_answer_s = max(self.report.slowest_api_answer_s, elapsed)
        return response

    async def submit_wave(self, count: int, sleep_s: int) -> None:
        for _ in range(count):
            body = {"workspace": "k8s", "image": "busybox:1.36", "command": ["sleep", str(sleep_s)]}
            response = await self.call("POST", "/api/v1/workloads", json=body)
            assert response.status_code == 201, response.text
            self.report.submitted.append(response.json()["id"])

    async def statuses(self) -> dict[str, str]:
        page = await self.call("GET", "/api/v1/workloads", params={"limit": 500})
        assert page.status_code == 200, page.text
        return {item["id"]: item["status"] for item in page.json()["items"]}


async def run_outage(
    tmp_path: Path,
    *,
    wave: int,
    error_s: float,
    slow_s: float,
    slow_delay_s: float,
    job_sleep_s: int = 1,
    finish_within_s: float = 120.0,
) -> OutageReport:
    report = OutageReport()
    async with running_cluster(tmp_path) as cluster:
        pilot = asyncio.create_task(_steady_autopilot(cluster, report))
        try:
            async with (
                kubernetes_server(cluster.kubeconfig, NAMESPACE, tmp_path / "server") as server,
                httpx.AsyncClient(base_url=server.url, timeout=60) as client,
            ):
                login = await client.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
                )
                client.headers["Authorization"] = f"Bearer {login.json()['token']}"
                assert (await client.post("/api/v1/workspaces", json={"name": "k8s"})).status_code == 201
                api = _Api(client, report)
                await api.submit_wave(wave, job_sleep_s)
                await _until(lambda s: all(s[w] != "PENDING" for w in report.submitted), api, 60)

                api.during_fault = True
                cluster.api.fault = ApiFault(status=500)
                await cluster.api.drop_watches()
                await api.submit_wave(wave, job_sleep_s)
                await _keep_reading(api, error_s)
                cluster.api.fault = ApiFault(status=None, delay_s=slow_delay_s)
                await api.submit_wave(wave, job_sleep_s)
                await _keep_reading(api, slow_s)
                cluster.api.fault = None
                api.during_fault = False
                report.faulted_requests = cluster.api.faulted_requests

                back = time.monotonic()
                final = await _until(
                    lambda s: all(s[w] in FINAL for w in report.submitted), api, finish_within_s
                )
                report.recovery_s = time.monotonic() - back
                report.final_status = {w: final[w] for w in report.submitted}
                report.server_alive = server.process.returncode is None
        finally:
            pilot.cancel()
            report.jobs_created = dict(cluster.api.creates)
            log = tmp_path / "server" / "server.log"
            report.server_log = log.read_text(errors="replace") if log.exists() else ""
    return report


async def _steady_autopilot(cluster: FakeCluster, report: OutageReport) -> None:
    """The emulated kubelet keeps playing the cluster through its own hiccups (a request of the test's
    kubelet timing out on a loaded machine must not stop every pod): those are counted, not fatal."""
    while True:
        try:
            await autopilot(cluster, tick_s=0.1)
        except httpx.HTTPError:
            report.kubelet_hiccups += 1
            await asyncio.sleep(0.2)


async def _keep_reading(api: _Api, seconds: float) -> None:
    """A user keeps listing while the cluster is in trouble: AstraGo's own API must keep answering."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await api.statuses()
        await asyncio.sleep(0.25)


async def _until(condition: object, api: _Api, within_s: float) -> dict[str, str]:
    deadline = time.monotonic() + within_s
    while True:
        statuses = await api.statuses()
        if condition(statuses):  # type: ignore[operator]
            return statuses
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within_s:g}s: {statuses}")
        await asyncio.sleep(0.2)
