"""GPU health fencing and cordons in a real `astrago server`, driven by the real CLI and API.

Simulated GPUs get their health from a scripted GPU source (`ASTRAGO_GPU_SOURCE=scripted:PATH`): rewriting the
script restarts its timeline, so an "XID 79 on GPU x at t=0" written while a job runs is reported by the
server's next health reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import ADMIN_PASSWORD, ServerProcess, User, wait_for

JOB = {"command": ["sleep", "300"], "resources": {"gpus": 1, "cpu": "100m", "memory": "64Mi"}}
XID_79 = "XID 79 (GPU fallen off the bus)"


def _start(tmp_path: Path, script: Path) -> tuple[ServerProcess, User]:
    server = ServerProcess(
        data_dir=tmp_path / "data",
        simulate_gpus="2xA100-80GB",
        extra_env={"ASTRAGO_GPU_SOURCE": f"scripted:{script}", "ASTRAGO_GPU_HEALTH_INTERVAL_S": "0.5"},
    )
    server.start()
    admin = User(server, "admin", tmp_path / "admin-home")
    admin.login(ADMIN_PASSWORD)
    return server, admin


def _gpu_of(admin: User, workload_id: str) -> int:
    placements = admin.wait_status(workload_id, "RUNNING", timeout=30)["placements"]
    gpu: int = placements[0]["gpus"][0]
    return gpu


def _node(admin: User) -> dict[str, Any]:
    (node,) = admin.api("GET", "/api/v1/nodes").json()
    result: dict[str, Any] = node
    return result


def _device(admin: User, index: int) -> dict[str, Any]:
    device: dict[str, Any] = next(d for d in _node(admin)["devices"] if d["index"] == index)
    return device


def _alerts(admin: User, key: str) -> list[dict[str, Any]]:
    items = admin.api("GET", "/api/v1/alerts").json()["items"]
    return [a for a in items if a["rule"] == "gpu-unhealthy" and a["key"] == key]


def _pending_reason(admin: User, workload_id: str, text: str) -> str:
    reason: str = wait_for(
        lambda: (
            (w := admin.workload(workload_id))["status"] == "PENDING"
            and text in (w["reason"] or "")
            and w["reason"]
        ),
        timeout=20,
        what=f"{workload_id} to wait naming {text!r}",
    )
    return reason


def test_xid_79_fences_the_gpu_new_work_goes_elsewhere_and_the_wait_names_it(tmp_path: Path) -> None:
    script = tmp_path / "gpus.yaml"
    script.write_text("gpus: [{index: 0}, {index: 1}]\n")
    server, admin = _start(tmp_path, script)
    try:
        admin.cli("workspace", "create", "ml-a")
        first = admin.submit("ml-a", **JOB)
        sick = _gpu_of(admin, first)
        node = _node(admin)["name"]
        script.write_text(
            json.dumps({"gpus": [{"index": 0}, {"index": 1}], "events": [{"gpu": sick, "xid": 79, "at": 0}]})
        )
        device = wait_for(
            lambda: (d := _device(admin, sick))["health"]["state"] == "unhealthy" and d,
            what=f"GPU {sick} fenced",
        )
        assert device["health"]["cause"] == XID_79
        assert device["fenced"]
        listing = admin.cli("nodes").stdout
        assert f"unhealthy: {XID_79}" in listing
        # the running job is told, and keeps running
        events = admin.api("GET", f"/api/v1/workloads/{first}/events").json()
        (told,) = [e for e in events if e["type"] == "GpuUnhealthy"]
        assert f"GPU {sick} on node {node}" in told["reason"]
        assert XID_79 in told["reason"]
        assert admin.workload(first)["status"] == "RUNNING"
        (alert,) = _alerts(admin, f"{node}/gpu{sick}")
        assert alert["state"] == "firing"
        assert alert["severity"] == "critical"
        assert alert["node"] == node
        assert f"is fenced: {XID_79}" in alert["summary"]
        assert first in alert["summary"]  # what runs on it is reported
        metrics = httpx.get(f"{server.url}/metrics").text
        assert (
            f'astrago_gpu_health{{cause="{XID_79}",gpu="{sick}",node="{node}",state="unhealthy"}} 1.0'
            in metrics
        )
        assert "astrago_gpus_fenced 1.0" in metrics

        second = admin.submit("ml-a", **JOB)
        assert _gpu_of(admin, second) == 1 - sick  # the next job lands on the other GPU
        third = admin.submit("ml-a", **JOB)
        _pending_reason(admin, third, f"GPU {sick} on node {node} is fenced: {XID_79}")
        admin.cli("cancel", first)  # the sick GPU is free now, but still fenced
        admin.wait_status(first, "CANCELLED", timeout=30)
        _pending_reason(admin, third, f"GPU {sick} on node {node} is fenced: {XID_79}")

        # the audit trail has the fence; an admin looks at the GPU and puts it back
        audit = admin.api("GET", "/api/v1/audit").json()
        assert any(a["action"] == "gpu.health" and a["target"] == f"{node}/gpu{sick}" for a in audit)
        out = admin.cli("node", "uncordon", node, "--gpu", str(sick)).stdout
        assert "takes new work again" in out
        assert _gpu_of(admin, third) == sick
        assert _device(admin, sick)["health"]["state"] == "healthy"
        (resolved,) = _alerts(admin, f"{node}/gpu{sick}")
        assert resolved["state"] == "resolved"
    finally:
        server.stop()


def test_cordon_and_uncordon_by_hand(tmp_path: Path) -> None:
    script = tmp_path / "gpus.yaml"
    script.write_text("gpus: [{index: 0}, {index: 1}]\n")
    server, admin = _start(tmp_path, script)
    try:
        admin.cli("workspace", "create", "ml-a")
        node = _node(admin)["name"]
        admin.cli("node", "cordon", node, "--gpu", "0", "--reason", "fan noise")
        assert _device(admin, 0)["cordon"]["reason"] == "fan noise"
        assert "cordoned: fan noise" in admin.cli("nodes").stdout
        first = admin.submit("ml-a", **JOB)
        assert _gpu_of(admin, first) == 1
        second = admin.submit("ml-a", **JOB)
        _pending_reason(admin, second, f"GPU 0 on node {node} is cordoned by admin: fan noise")

        cordoned = admin.api("POST", f"/api/v1/nodes/{node}/cordon", json={"reason": "BIOS update"})
        assert cordoned.status_code == 200, cordoned.text
        listed = _node(admin)
        assert listed["cordon"]["reason"] == "BIOS update"
        assert listed["cordon"]["cordoned_by"] == "admin"
        metrics = httpx.get(f"{server.url}/metrics").text
        assert f'astrago_node_cordoned{{node="{node}"}} 1.0' in metrics
        assert f'astrago_gpu_cordoned{{gpu="0",node="{node}"}} 1.0' in metrics
        assert "astrago_gpus_fenced 2.0" in metrics  # both GPUs of the cordoned node
        _pending_reason(admin, second, f"node {node} is cordoned by admin: BIOS update")
        assert admin.workload(first)["status"] == "RUNNING"  # work already there keeps running

        assert admin.api("POST", f"/api/v1/nodes/{node}/uncordon", json={}).json() == {"cleared": True}
        _pending_reason(admin, second, f"GPU 0 on node {node} is cordoned by admin: fan noise")
        admin.cli("node", "uncordon", node, "--gpu", "0")
        assert _gpu_of(admin, second) == 0
        again = admin.cli("node", "uncordon", node, "--gpu", "0").stdout
        assert "nothing changed" in again

        actions = [(a["action"], a["target"]) for a in admin.api("GET", "/api/v1/audit").json()]
        for expected in [
            ("node.cordon", f"{node}/gpu0"),
            ("node.cordon", node),
            ("node.uncordon", node),
            ("node.uncordon", f"{node}/gpu0"),
        ]:
            assert expected in actions

        # bad input: a clear message, no traceback, nothing changed
        missing = admin.cli("node", "cordon", "no-such-node", check=False)
        assert missing.returncode != 0
        assert "no node named 'no-such-node'" in missing.stderr
        assert "Traceback" not in missing.stderr
        bad_gpu = admin.api("POST", f"/api/v1/nodes/{node}/cordon", json={"gpu": 7})
        assert bad_gpu.status_code == 422
        assert bad_gpu.headers["content-type"] == "application/problem+json"
        assert bad_gpu.json()["detail"] == f"node {node} has no GPU 7 (its GPUs: 0, 1)"
        unknown_field = admin.api("POST", f"/api/v1/nodes/{node}/cordon", json={"gpus": 1})
        assert unknown_field.status_code == 422
        assert _node(admin)["cordon"] is None
        assert _device(admin, 0)["cordon"] is None

        # only admins cordon
        admin.cli("user", "create", "alice", "--password-stdin", stdin="Sunny-Meadow-42")
        alice = User(server, "alice", tmp_path / "alice-home")
        alice.login("Sunny-Meadow-42")
        refused = alice.api("POST", f"/api/v1/nodes/{node}/cordon", json={})
        assert refused.status_code == 403
        assert "only a platform admin can cordon" in refused.json()["detail"]
    finally:
        server.stop()
