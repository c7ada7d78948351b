"""A service with 2 replicas behind the gateway: each replica gets its own host port, the gateway balances
across the ready ones, and a replica that fails its health checks leaves the rotation until it recovers."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import httpx

from tests.integration.gateway.conftest import Gateway
from tests.support.server import wait_for

SERVICE = (
    "import http.server, os\n"
    "index = os.environ['ASTRAGO_REPLICA_INDEX']\n"
    "class Handler(http.server.BaseHTTPRequestHandler):\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "    def do_GET(self):\n"
    "        sick = self.path == '/healthz' and os.path.exists(f'sick-{index}')\n"
    "        self.send_response(503 if sick else 200)\n"
    "        self.end_headers()\n"
    "        self.wfile.write(index.encode())\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), Handler).serve_forever()\n"
)


def answers(gateway: Gateway, workload_id: str, count: int) -> Counter[str]:
    url = f"{gateway.admin.server.url}/proxy/{workload_id}/8080/"
    with httpx.Client(headers={"Authorization": f"Bearer {gateway.admin.token}"}) as client:
        return Counter(client.get(url).text for _ in range(count))


def test_the_gateway_balances_over_healthy_replicas(gateway: Gateway) -> None:
    options = {"health_path": "/healthz", "health_interval": "0.2", "health_threshold": "2"}
    workload_id = gateway.admin.submit(
        "web",
        [sys.executable, "-c", SERVICE],
        kind="service",
        replicas=2,
        ports=[8080],
        options=options,
        resources={"cpu": "100m", "memory": "256Mi"},
    )
    gateway.admin.wait_status(workload_id, "RUNNING", timeout=60)
    assert answers(gateway, workload_id, 10) == {"0": 5, "1": 5}
    endpoints = gateway.admin.api("GET", f"/api/v1/workloads/{workload_id}/endpoints").json()
    assert endpoints[0]["replicas_ready"] == 2
    workdir = Path(gateway.admin.server.data_dir) / "workdirs" / workload_id
    (workdir / "sick-1").touch()
    wait_for(lambda: answers(gateway, workload_id, 4) == {"0": 4}, what="replica 1 to leave the rotation")
    (workdir / "sick-1").unlink()
    wait_for(lambda: answers(gateway, workload_id, 4) == {"0": 2, "1": 2}, what="replica 1 to come back")
    gateway.admin.api("POST", f"/api/v1/workloads/{workload_id}/cancel")
