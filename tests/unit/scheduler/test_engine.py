"""The engine's stages on small hand-made clusters with known answers."""

from __future__ import annotations

from astrago.domain.resources import ResourceRequest
from astrago.scheduler import schedule
from astrago.scheduler.types import Quota, SchedulerConfig
from tests.unit.scheduler.engine_factories import GPU, gpus, job, node, nodes, running_on, snapshot


def test_admits_in_order_until_full_and_explains_the_rest_with_positions() -> None:
    pending = [job(f"w{i}", request=gpus(3), seq=i) for i in range(5)]

    decisions = schedule(snapshot(nodes(3), pending))

    assert [a.workload_id for a in decisions.admit] == ["w0", "w1", "w2"]
    assert {k: (v.code, v.position) for k, v in decisions.pending.items()} == {
        "w3": ("no_capacity", 1),
        "w4": ("no_capacity", 2),
    }
    used = [p.node for a in decisions.admit for p in a.placements]
    assert sorted(used) == ["n0", "n1", "n2"]


def test_higher_priority_goes_first_even_when_submitted_later() -> None:
    pending = [job("early", request=gpus(4), seq=1), job("urgent", request=gpus(4), seq=2, priority=10)]

    decisions = schedule(snapshot(nodes(1), pending))

    assert [a.workload_id for a in decisions.admit] == ["urgent"]
    assert decisions.pending["early"].position == 1


def test_fifo_discipline_ignores_priority() -> None:
    pending = [job("early", request=gpus(4), seq=1), job("urgent", request=gpus(4), seq=2, priority=10)]

    decisions = schedule(snapshot(nodes(1), pending), SchedulerConfig(queue="fifo"))

    assert [a.workload_id for a in decisions.admit] == ["early"]


def test_gang_is_all_or_nothing() -> None:
    busy = running_on(job("busy"), "n0", [0])
    gang = job("gang", request=gpus(4), replicas=2)

    decisions = schedule(snapshot(nodes(2), [gang], [busy]))

    assert decisions.admit == []
    assert decisions.pending["gang"].code == "no_capacity"


def test_gang_lands_on_the_fewest_nodes() -> None:
    gang = job("gang", request=gpus(1), replicas=4)
    half_busy = running_on(job("busy"), "n1", [0, 1])

    decisions = schedule(snapshot(nodes(3), [gang], [half_busy]))

    (admission,) = decisions.admit
    assert len(admission.placements) == 4
    assert len({p.node for p in admission.placements}) == 1


def test_request_bigger_than_any_node_never_fits_and_says_why() -> None:
    decisions = schedule(snapshot(nodes(2), [job("huge", request=gpus(8, model="A100"))]))

    reason = decisions.pending["huge"]
    assert reason.code == "no_fit"
    assert "no node has 8 GPUs of model A100 (the largest has 4)" in reason.message


def test_gang_bigger_than_the_cluster_never_fits() -> None:
    decisions = schedule(snapshot(nodes(2), [job("gang", request=gpus(4), replicas=3)]))

    assert decisions.pending["gang"].code == "no_fit"
    assert "all 3 replicas" in decisions.pending["gang"].message


def test_malformed_requests_are_invalid() -> None:
    share_and_whole = ResourceRequest(gpus=1, gpu_share_milli=500)
    pending = [job("zero", replicas=0), job("both", request=share_and_whole)]

    decisions = schedule(snapshot(nodes(1), pending))

    assert decisions.pending["zero"].code == "invalid"
    assert decisions.pending["both"].code == "invalid"
    assert decisions.admit == []


def test_workspace_at_its_limit_waits_with_whole_gpu_numbers() -> None:
    used = [running_on(job(f"r{i}", "ml-a"), "n0", [i]) for i in range(4)]
    quotas = {"ml-a": Quota(gpu_limit_milli=4 * GPU)}

    decisions = schedule(snapshot(nodes(2), [job("more", "ml-a", gpus(2))], used, quotas))

    reason = decisions.pending["more"]
    assert reason.code == "quota_limit"
    assert "workspace ml-a is at its GPU limit 4/4" in reason.message


def test_request_above_the_limit_can_never_run() -> None:
    quotas = {"ml-a": Quota(gpu_limit_milli=2 * GPU)}

    decisions = schedule(snapshot(nodes(1), [job("big", "ml-a", gpus(3))], quotas=quotas))

    assert decisions.pending["big"].code == "quota_limit"
    assert "can never run" in decisions.pending["big"].message


def test_borrowing_above_the_guarantee_is_allowed_up_to_the_limit() -> None:
    quotas = {"ml-a": Quota(gpu_guaranteed_milli=1 * GPU, gpu_limit_milli=3 * GPU)}
    pending = [job(f"w{i}", "ml-a", seq=i) for i in range(4)]

    decisions = schedule(snapshot(nodes(1), pending, quotas=quotas))

    assert [a.workload_id for a in decisions.admit] == ["w0", "w1", "w2"]
    assert decisions.pending["w3"].code == "quota_limit"


def test_per_model_limit_steers_to_another_model() -> None:
    cluster = [node("h", 2, "H100"), node("a", 2, "A100")]
    holding = running_on(job("r", "ml-a"), "h", [0])
    quotas = {"ml-a": Quota(gpu_models=(("H100", 0, 1 * GPU),))}  # model names compare case-insensitively

    decisions = schedule(snapshot(cluster, [job("next", "ml-a")], [holding], quotas))

    (admission,) = decisions.admit
    assert admission.placements[0].node == "a"


def test_per_model_limit_blocks_a_request_pinned_to_that_model() -> None:
    cluster = [node("h", 2, "H100"), node("a", 2, "A100")]
    holding = running_on(job("r", "ml-a", gpus(1, model="H100")), "h", [0])
    quotas = {"ml-a": Quota(gpu_models=(("h100", 0, 1 * GPU),))}

    decisions = schedule(snapshot(cluster, [job("next", "ml-a", gpus(1, model="H100"))], [holding], quotas))

    assert decisions.pending["next"].code == "quota_limit"
    assert "h100 1/1" in decisions.pending["next"].message


def test_same_snapshot_gives_the_same_decisions() -> None:
    pending = [job(f"w{i}", f"t{i % 3}", gpus(1 + i % 3), seq=i, priority=i % 2) for i in range(20)]
    shot = snapshot(nodes(4), pending, quotas={"t0": Quota(gpu_guaranteed_milli=4 * GPU)})

    assert schedule(shot) == schedule(shot)


def test_nodes_with_inconsistent_records_get_no_new_work() -> None:
    # Two records claim GPU 0 of n0: the snapshot is stale; n0 is avoided rather than over-allocated.
    clash = [running_on(job("r1"), "n0", [0]), running_on(job("r2"), "n0", [0], started=1)]

    decisions = schedule(snapshot(nodes(2), [job("new", request=gpus(1))], clash))

    (admission,) = decisions.admit
    assert admission.placements[0].node == "n1"


def test_capacity_reasons_describe_the_free_room() -> None:
    busy = [running_on(job(f"r{i}"), "n0", [i], started=i) for i in range(3)]

    decisions = schedule(
        snapshot(nodes(1), [job("two", request=gpus(2))], busy), SchedulerConfig(reservation=False)
    )

    assert decisions.pending["two"].message == (
        "no node has 2 free GPUs with room for the CPU and memory; the largest free is 1"
    )
