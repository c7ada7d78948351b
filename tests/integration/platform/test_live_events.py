"""The live event stream (`GET /api/v1/events/stream`) over real HTTP against a real server: each caller
sees only their workspaces' workloads change, queue positions included, and a client that reconnects with
`Last-Event-ID`, even to a restarted server, receives what changed while it was away."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.support.server import Gate, User, wait_for
from tests.support.sse import EventFollower, StreamEvent

ONE_GPU = {"resources": {"gpus": 1, "cpu": "100m", "memory": "64Mi"}}


def _setup(admin: User, make_user: Callable[[str], User]) -> tuple[User, User]:
    """Over HTTP: the CLI paths have their own tests, and each CLI process costs seconds on a busy host."""
    alice, bob = make_user("alice"), make_user("bob")
    for workspace, member in (("ml-a", "alice"), ("ml-b", "bob")):
        assert admin.api("POST", "/api/v1/workspaces", json={"name": workspace}).status_code == 201
        role = {"username": member, "role": "member"}
        assert admin.api("PUT", f"/api/v1/workspaces/{workspace}/members", json=role).status_code == 200
    limits = {"gpu_guaranteed": 1, "gpu_limit": 1}
    assert admin.api("PUT", "/api/v1/workspaces/ml-a/quota", json=limits).status_code == 200
    return alice, bob


def _is(workload_id: str, status: str) -> Callable[[StreamEvent], bool]:
    return lambda e: e.type == "workload" and e.data["id"] == workload_id and e.data["status"] == status


def _open_streams(admin: User) -> int:
    body = admin.api("GET", "/metrics").text
    line = next(x for x in body.splitlines() if x.startswith("astrago_event_streams_open "))
    return int(float(line.split()[1]))


def test_stream_shows_own_changes_live_with_queue_positions_and_hides_other_workspaces(
    admin: User, make_user: Callable[[str], User], gate: Gate
) -> None:
    alice, bob = _setup(admin, make_user)
    with (
        EventFollower(alice.server.url, str(alice.token)) as alice_stream,
        EventFollower(bob.server.url, str(bob.token)) as bob_stream,
    ):
        assert alice_stream.next().type == "ready"
        assert bob_stream.next().type == "ready"

        quick = alice.submit("ml-a", ["/bin/sh", "-c", "echo hello"], **ONE_GPU)
        for status in ("PENDING", "SUCCEEDED"):  # it may end before anyone sees it run
            alice_stream.until(f"{quick} {status}", _is(quick, status))

        held = alice.submit("ml-a", gate.command(), **ONE_GPU)
        alice_stream.until("the gated job running", _is(held, "RUNNING"))
        # the GPU it holds names it to alice; bob only learns that another workspace uses it
        alice_gpus = [d for n in alice.api("GET", "/api/v1/nodes").json() for d in n["devices"]]
        bob_gpus = [d for n in bob.api("GET", "/api/v1/nodes").json() for d in n["devices"]]
        assert [t["workload_id"] for d in alice_gpus for t in d["tenants"]] == [held]
        assert [t for d in bob_gpus for t in d["tenants"]] == []
        assert sum(d["other_tenants"] for d in bob_gpus) == 1
        waiting = alice.submit("ml-a", gate.command(), **ONE_GPU)
        queued = alice_stream.until(
            "the second job queued behind the quota",
            lambda e: _is(waiting, "PENDING")(e) and e.data["queue_position"] == 1,
        )
        assert "limit 1/1" in queued.data["reason"]

        gate.open(held)  # capacity frees: the waiting job starts, and the stream says so
        alice_stream.until("the queued job started", _is(waiting, "RUNNING"))
        gate.open(waiting)

        own = bob.submit("ml-b", ["/bin/true"], **ONE_GPU)
        bob_stream.until("bob's own job done", _is(own, "SUCCEEDED"))
        seen_by_bob = {e.data.get("id") for e in bob_stream.seen if e.type == "workload"}
        assert seen_by_bob == {own}, "bob must not hear of ml-a's workloads"
        ids = [e.id for e in alice_stream.seen]
        assert ids == sorted(ids)
        assert _open_streams(admin) == 2
    wait_for(lambda: _open_streams(admin) == 0, what="closed streams to be released")

    with EventFollower(admin.server.url, str(admin.token), last_event_id=10**9) as stream:
        first = stream.next()
        assert first.type == "reset", "a resume point the server never gave means: refetch everything"
        assert first.id < 10**9
    anonymous = httpx.get(f"{admin.server.url}/api/v1/events/stream", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")


def test_reconnect_after_a_restart_resumes_from_last_event_id_without_loss(
    admin: User, make_user: Callable[[str], User], gate: Gate
) -> None:
    alice, _bob = _setup(admin, make_user)
    held = alice.submit("ml-a", gate.command(), **ONE_GPU)
    waiting = alice.submit("ml-a", gate.command(), **ONE_GPU)
    with EventFollower(alice.server.url, str(alice.token)) as stream:
        stream.next()
        alice.wait_status(held, "RUNNING")
        last = stream.until("the waiting job's queue position", lambda e: _is(waiting, "PENDING")(e)).id

    # While nobody listens: the first job ends, the second starts; then the server restarts.
    gate.open(held)
    alice.wait_status(waiting, "RUNNING")
    server = alice.server
    assert server.process is not None
    server.process.terminate()
    server.process.wait(15)
    server.start()

    with EventFollower(server.url, str(alice.token), last_event_id=last) as resumed:
        assert resumed.next().type == "ready"
        resumed.until("the missed end of the first job", _is(held, "SUCCEEDED"))
        resumed.until("the missed start of the second job", _is(waiting, "RUNNING"))
    gate.open(waiting)
