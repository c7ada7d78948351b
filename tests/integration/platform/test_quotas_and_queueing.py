"""Two teams share 4 simulated GPUs under quotas: queueing with reasons, borrowing, reclaim, cancel."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.server import Gate, User, wait_for

ONE_GPU = {"resources": {"gpus": 1, "cpu": "100m", "memory": "64Mi"}}


def _statuses(user: User, ids: list[str]) -> list[str]:
    return [user.workload(i)["status"] for i in ids]


def _setup_teams(admin: User, make_user: Callable[[str], User]) -> tuple[User, User]:
    alice, bob = make_user("alice"), make_user("bob")
    for workspace, member, guaranteed, limit in (("ml-a", "alice", "2", "3"), ("ml-b", "bob", "2", "4")):
        admin.cli("workspace", "create", workspace)
        admin.cli("workspace", "add-member", workspace, member, "--role", "member")
        admin.cli("quota", "set", workspace, "--gpu-guaranteed", guaranteed, "--gpu-limit", limit)
    return alice, bob


def test_queue_past_quota_borrow_reclaim_and_resume(
    admin: User, make_user: Callable[[str], User], gate: Gate
) -> None:
    alice, bob = _setup_teams(admin, make_user)

    # ml-a may borrow one idle GPU beyond its guarantee of 2, up to its limit of 3; the 4th waits.
    a_jobs = [alice.submit("ml-a", gate.command(), **ONE_GPU) for _ in range(4)]
    wait_for(lambda: _statuses(alice, a_jobs).count("RUNNING") == 3, what="three ml-a jobs running")
    waiting = alice.workload(a_jobs[3])
    assert waiting["status"] == "PENDING"
    assert "ml-a" in waiting["reason"]
    assert "limit 3/3" in waiting["reason"]
    assert waiting["queue_position"] == 1
    described = alice.cli("describe", a_jobs[3]).stdout
    assert "limit 3/3" in described
    assert "queue:     #1" in described

    # ml-b takes the last idle GPU, then reclaims its guarantee from ml-a's borrowed GPU.
    b_jobs = [bob.submit("ml-b", gate.command(), **ONE_GPU) for _ in range(2)]
    wait_for(lambda: _statuses(bob, b_jobs) == ["RUNNING", "RUNNING"], what="both ml-b jobs running")
    a_states = _statuses(alice, a_jobs)
    assert a_states.count("RUNNING") == 2, a_states
    preempted = [i for i in a_jobs if any(e["type"] == "Preempted" for e in _events(alice, i))]
    assert len(preempted) == 1
    assert alice.workload(preempted[0])["status"] == "PENDING"

    # When ml-a's own jobs end, its queued ones run, within its guarantee.
    running_a = [i for i in a_jobs if alice.workload(i)["status"] == "RUNNING"]
    for workload_id in running_a:
        gate.open(workload_id)
    wait_for(
        lambda: sorted(_statuses(alice, a_jobs)) == ["RUNNING", "RUNNING", "SUCCEEDED", "SUCCEEDED"],
        what="ml-a's queued jobs to start after its first ones ended",
    )
    # The preempted job ran twice (it was stopped, then requeued); no other job started twice.
    for workload_id in [*a_jobs, *b_jobs]:
        expected = 2 if workload_id in preempted else 1
        assert len(gate.starts(workload_id)) == expected, workload_id


def _events(user: User, workload_id: str) -> list[dict[str, str]]:
    response = user.api("GET", f"/api/v1/workloads/{workload_id}/events")
    return list(response.json())


def test_no_node_big_enough_waits_with_reason_then_cancel_pending_and_running(
    admin: User, gate: Gate
) -> None:
    admin.cli("workspace", "create", "ml-a")
    running = admin.submit("ml-a", gate.command(), resources={"gpus": 2, "cpu": "100m", "memory": "64Mi"})
    admin.wait_status(running, "RUNNING")
    big = admin.submit("ml-a", gate.command(), resources={"gpus": 4, "cpu": "100m", "memory": "64Mi"})
    pending = wait_for(lambda: (w := admin.workload(big))["pending_code"] not in (None, "new") and w)
    assert pending["status"] == "PENDING"
    assert "4" in pending["reason"]
    assert "free" in pending["reason"] or "largest" in pending["reason"]

    admin.cli("cancel", big)
    assert admin.workload(big)["status"] == "CANCELLED"
    assert "Stopping" in admin.cli("cancel", running).stdout
    cancelled = admin.wait_status(running, "CANCELLED")
    assert "cancelled by admin" in cancelled["reason"]
    assert cancelled["placements"][0]["state"] == "STOPPED"
    again = admin.cli("cancel", running, check=False)
    assert again.returncode == 1
    assert "already ended" in again.stderr
    assert "Traceback" not in again.stderr
