"""Time mode: replay a trace's arrivals and run times through the live scheduling engine.

Event-driven: time jumps from one event (an arrival, a completion, a preempted workload stopping) to the
next, and the engine runs one cycle (`astrago.scheduler.engine.run_cycle`, the same code `schedule()` runs
for the server) after each batch of events that share a timestamp. Nothing is dropped: a workload that does
not fit waits in the queue; only one that could never run (bigger than any node, or than its team's limit)
is counted as failed.

Trace mapping (openb has no teams, priorities or gangs):

* arrival = `creation_time`; run time = `deletion_time − scheduled_time`; a pod the trace never scheduled
  runs for `deletion_time − creation_time` (how long it existed); a pod without times is skipped.
* team = drawn from the CRC-32 of the pod name (stable across runs and machines): evenly, or with
  `team_skew` s > 0 in proportion to 1/(i+1)^s, so a few teams ask for much more than their guarantee; a
  native-trace pod with a `workspace` keeps it.
* quotas: every team is guaranteed an equal share of the cluster's GPUs (whole GPUs, rounded down) and has no
  limit, so idle GPUs are borrowed and reclaimed by preemption when their owner needs them.
* cluster scale s keeps node i when ⌊(i+1)·s⌋ > ⌊i·s⌋: an evenly spread subset, so the GPU-model mix of a
  sorted node list is preserved, with no randomness.
* speedup: arrival times are divided by `speedup`; run times are unchanged. openb in real time offers its
  cluster under 1% of its GPU-seconds, so queueing only appears when arrivals are compressed. The report
  gives the resulting offered load (`offered_load`).
* preemption: the victim keeps its GPUs for `grace_seconds`, then goes back to the queue with its original
  submission order and resumes its remaining run time (checkpointing assumed)."""

from __future__ import annotations

import heapq
import math
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from astrago.scheduler.engine import run_cycle
from astrago.scheduler.explain import ReasonCode
from astrago.scheduler.placement import DEFAULT_POLICY, get_policy
from astrago.scheduler.state import SchedulingState
from astrago.scheduler.types import NodeInfo, Quota, SchedulerConfig, WorkloadRequest
from astrago.sim.fill import pod_type
from astrago.sim.traces import TracePod

NEVER_RUNS = frozenset({ReasonCode.INVALID.value, ReasonCode.NO_FIT.value})
UTILISATION_POINTS = 200


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    policy: str = DEFAULT_POLICY
    queue: str = "fairshare"
    backfill: bool = True
    reservation: bool = True
    preemption: bool = True
    teams: int = 8
    team_skew: float = 0.0  # 0 = pods split evenly between teams; s > 0 = Zipf(s) team sizes
    cluster_scale: float = 1.0
    grace_seconds: int = 30
    seed: int = 42
    # Arrival times are divided by this (run times are kept): openb in real time offers its cluster a few
    # percent of its GPUs, so queueing only appears when arrivals are compressed.
    speedup: float = 1.0

    def scheduler_config(self) -> SchedulerConfig:
        return SchedulerConfig(
            policy=self.policy,
            preemption=self.preemption,
            backfill=self.backfill,
            queue=self.queue,
            reservation=self.reservation,
            seed=self.seed,
        )


def scale_cluster(nodes: Sequence[NodeInfo], scale: float) -> list[NodeInfo]:
    """An evenly spread ⌊len·scale⌋-node subset (see the module docstring)."""
    if not 0 < scale <= 1:
        raise ValueError(f"cluster scale must be in (0, 1], not {scale}")
    return [node for i, node in enumerate(nodes) if math.floor((i + 1) * scale) > math.floor(i * scale)]


def team_of(pod: TracePod, teams: int, skew: float = 0.0) -> str:
    """The pod's team: its native `workspace`, else drawn from the CRC-32 of its name (stable everywhere).
    With `skew` s > 0, team i gets a share of pods proportional to 1/(i+1)^s (Zipf), so some teams ask for
    far more than their equal guarantee and borrow, and the others reclaim."""
    if pod.workspace:
        return pod.workspace
    point = zlib.crc32(pod.name.encode()) / 2**32
    weights = np.array([1 / (i + 1) ** skew for i in range(teams)])
    index = int(np.searchsorted(np.cumsum(weights) / weights.sum(), point, side="right"))
    return f"team-{min(index, teams - 1)}"


def team_quotas(team_names: Sequence[str], gpu_capacity_milli: int) -> dict[str, Quota]:
    """Equal guaranteed GPU shares in whole GPUs, no limits."""
    share = (gpu_capacity_milli // max(1, len(team_names))) // 1000 * 1000
    return {name: Quota(gpu_guaranteed_milli=share) for name in team_names}


def offered_load(pods: Sequence[tuple[TracePod, int]], gpu_capacity_milli: int) -> float:
    """GPU-seconds asked by the pods arriving in the central 90% of arrival times (5th to 95th percentile)
    ÷ (capacity × that window). The window keeps a few ancient or last-second arrivals from stretching
    the span: openb's pods arrive over 150 days, most of them in the last 30."""
    arrivals = np.array([pod.creation_time or 0 for pod, _ in pods], float)
    if not len(arrivals) or gpu_capacity_milli <= 0:
        return 0.0
    low, high = np.percentile(arrivals, [5, 95])
    if high <= low:
        return 0.0
    asked = sum(
        pod.request.gpu_milli * pod.replicas * run
        for (pod, run), arrival in zip(pods, arrivals, strict=True)
        if low <= arrival <= high
    )
    return float(asked / (gpu_capacity_milli * (high - low)))


def _run_time(pod: TracePod) -> int | None:
    if pod.run_time is not None:
        return pod.run_time
    if pod.deletion_time is not None and pod.creation_time is not None:
        return max(0, pod.deletion_time - pod.creation_time)
    return None


@dataclass(slots=True)
class _Job:
    request: WorkloadRequest
    arrival: int
    run_time: int
    gpu_milli: int
    remaining: int
    first_start: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    preemptions: int = 0
    end_version: int = 0


@dataclass(slots=True)
class ReplayReport:
    config: ReplayConfig
    nodes: int
    gpus: int
    jobs: list[_Job]
    skipped: int
    failed: Counter[str]
    preemptions: int
    cycles: int
    seconds: float
    utilisation: list[tuple[int, float]] = field(default_factory=list)  # (time, allocated % of GPUs)
    offered_load: float = 0.0
    arrival_speedup: float = 1.0

    def to_json(self) -> dict[str, Any]:
        """The report's JSON document (keys documented in docs/scheduling.md)."""
        done = [job for job in self.jobs if job.finished_at is not None and job.first_start is not None]
        delays = np.array(
            [job.first_start - job.arrival for job in done if job.first_start is not None], float
        )
        jct = np.array([job.finished_at - job.arrival for job in done if job.finished_at is not None], float)
        start = min((job.arrival for job in self.jobs), default=0)
        last_arrival = max((job.arrival for job in self.jobs), default=0)
        end = max((job.finished_at for job in done if job.finished_at is not None), default=start)
        teams = sorted({job.request.workspace for job in self.jobs})
        per_team = {
            team: self._team_stats([job for job in done if job.request.workspace == team]) for team in teams
        }
        slowdown_inverse = [1 / stats["mean_slowdown"] for stats in per_team.values() if stats["pods"]]
        return {
            "mode": "replay",
            "policy": self.config.policy,
            "seeds": [self.config.seed],
            "queue": self.config.queue,
            "backfill": self.config.backfill,
            "reservation": self.config.reservation,
            "preemption": self.config.preemption,
            "teams": self.config.teams,
            "team_skew": self.config.team_skew,
            "cluster_scale": self.config.cluster_scale,
            "nodes": self.nodes,
            "gpus": self.gpus,
            "offered_load": round(self.offered_load, 4),
            "arrival_speedup": round(self.arrival_speedup, 2),
            "pods": len(self.jobs),
            "pods_completed": len(done),
            "pods_skipped_without_times": self.skipped,
            "failed_pods_by_type": dict(sorted(self.failed.items())),
            "queueing_delay_s": _summary(delays),
            "queueing_delay_by_type_s": self._delay_by_type(done),
            "jct_s": _summary(jct),
            "makespan_s": int(end - start),
            # Over the arrival window: after the last arrival a few very long pods may run alone for weeks.
            "gpu_utilisation_mean": round(self._time_weighted_utilisation(start, last_arrival), 4),
            "gpu_utilisation_peak": round(max((u for _, u in self.utilisation), default=0.0), 4),
            "gpu_utilisation": _downsample(self.utilisation, UTILISATION_POINTS),
            "preemptions": self.preemptions,
            "jain_fairness": round(jain_index(slowdown_inverse), 4),
            "per_team": per_team,
            "engine_cycles": self.cycles,
            "seconds": round(self.seconds, 2),
        }

    @staticmethod
    def _delay_by_type(jobs: list[_Job]) -> dict[str, dict[str, float]]:
        """Queueing delay per pod type: whether large jobs starve shows here, not in the overall mean."""
        by_type: dict[str, list[float]] = {}
        for job in jobs:
            if job.first_start is not None:
                by_type.setdefault(pod_type(job.request.resources), []).append(job.first_start - job.arrival)
        return {kind: _summary(np.array(values, float)) for kind, values in sorted(by_type.items())}

    @staticmethod
    def _team_stats(jobs: list[_Job]) -> dict[str, Any]:
        if not jobs:
            return {"pods": 0, "mean_queueing_delay_s": 0.0, "mean_slowdown": 1.0, "gpu_hours": 0.0}
        delays = [job.first_start - job.arrival for job in jobs if job.first_start is not None]
        slowdowns = [
            (job.finished_at - job.arrival) / max(job.run_time, 1)
            for job in jobs
            if job.finished_at is not None
        ]
        return {
            "pods": len(jobs),
            "mean_queueing_delay_s": round(float(np.mean(delays)), 1),
            "mean_slowdown": round(float(np.mean(slowdowns)), 4),
            "gpu_hours": round(sum(job.gpu_milli * job.run_time for job in jobs) / 1000 / 3600, 1),
        }

    def _time_weighted_utilisation(self, start: int, end: int) -> float:
        if end <= start or not self.utilisation:
            return 0.0
        total = 0.0
        for (t0, value), (t1, _) in zip(self.utilisation, [*self.utilisation[1:], (end, 0.0)], strict=True):
            total += value * max(0, min(t1, end) - max(t0, start))
        return total / (end - start)


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index (Σx)² / (n·Σx²): 1 when all are equal, 1/n when one gets everything."""
    if not values:
        return 1.0
    squares = sum(v * v for v in values)
    return (sum(values) ** 2) / (len(values) * squares) if squares else 1.0


def _summary(values: np.ndarray) -> dict[str, float]:
    if not len(values):
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "mean": round(float(values.mean()), 1),
        "p50": round(float(p50), 1),
        "p95": round(float(p95), 1),
        "p99": round(float(p99), 1),
        "max": round(float(values.max()), 1),
    }


def _downsample(series: list[tuple[int, float]], points: int) -> list[list[float]]:
    if len(series) <= points:
        return [[t, round(u, 3)] for t, u in series]
    step = len(series) / points
    return [[series[int(i * step)][0], round(series[int(i * step)][1], 3)] for i in range(points)]


class _Replay:
    def __init__(self, nodes: Sequence[NodeInfo], pods: Sequence[TracePod], config: ReplayConfig) -> None:
        self.config = config
        self.nodes = scale_cluster(nodes, config.cluster_scale)
        timed = [(pod, _run_time(pod)) for pod in pods]
        usable = [(pod, run) for pod, run in timed if pod.creation_time is not None and run is not None]
        self.skipped = len(pods) - len(usable)
        usable.sort(key=lambda item: item[0].creation_time or 0)
        teams = sorted({team_of(pod, config.teams, config.team_skew) for pod, _ in usable})
        probe = SchedulingState(self.nodes, ())
        self.capacity = probe.cluster.gpu_capacity_milli
        self.natural_load = offered_load(usable, self.capacity)
        if config.speedup < 1:
            raise ValueError(
                f"speedup must be at least 1 (arrival times are divided by it), not {config.speedup}"
            )
        self.speedup = config.speedup
        self.state = SchedulingState(self.nodes, team_quotas(teams, self.capacity).items())
        self.scheduler_config = config.scheduler_config()
        self.policy = get_policy(config.policy, seed=config.seed, workload=[pod.request for pod, _ in usable])
        self.jobs: dict[str, _Job] = {}
        self.arrivals: list[_Job] = []
        for seq, (pod, run) in enumerate(usable):
            request = WorkloadRequest(
                id=pod.name,
                workspace=team_of(pod, config.teams, config.team_skew),
                resources=pod.request,
                replicas=pod.replicas,
                priority=pod.priority,
                submitted_seq=seq,
            )
            arrival = math.floor((pod.creation_time or 0) / self.speedup)
            job = _Job(request, arrival, run or 0, request.total_gpu_milli, run or 0)
            self.jobs[pod.name] = job
            self.arrivals.append(job)
        self.pending: dict[str, WorkloadRequest] = {}
        self.ends: list[tuple[int, int, str]] = []  # (time, version, id) for completions and stops
        self.stops: dict[str, int] = {}
        self.failed: Counter[str] = Counter()
        self.preemptions = 0
        self.cycles = 0
        self.utilisation: list[tuple[int, float]] = []

    def run(self) -> ReplayReport:
        began = time.process_time()  # CPU time: wall time on a shared machine is not ours
        next_arrival = 0
        while next_arrival < len(self.arrivals) or self.ends:
            now = min(
                self.arrivals[next_arrival].arrival if next_arrival < len(self.arrivals) else math.inf,
                self.ends[0][0] if self.ends else math.inf,
            )
            moment = int(now)
            while self.ends and self.ends[0][0] <= moment:
                _, version, job_id = heapq.heappop(self.ends)
                self._end(job_id, version, moment)
            while next_arrival < len(self.arrivals) and self.arrivals[next_arrival].arrival <= moment:
                job = self.arrivals[next_arrival]
                self.pending[job.request.id] = job.request
                next_arrival += 1
            self._cycle(moment)
        for job_id in self.pending:  # left when nothing more can happen: it could never run here
            self.failed[f"never_scheduled:{pod_type(self.jobs[job_id].request.resources)}"] += 1
        return ReplayReport(
            config=self.config,
            nodes=len(self.nodes),
            gpus=self.capacity // 1000,
            jobs=list(self.jobs.values()),
            skipped=self.skipped,
            failed=self.failed,
            preemptions=self.preemptions,
            cycles=self.cycles,
            seconds=time.process_time() - began,
            utilisation=self.utilisation,
            offered_load=self.natural_load * self.speedup,
            arrival_speedup=self.speedup,
        )

    def _end(self, job_id: str, version: int, now: int) -> None:
        job = self.jobs[job_id]
        if version != job.end_version or job_id not in self.state.running:
            return  # superseded: preempted before completing, or completed before its preemption stop
        self.state.finish(job_id)
        assert job.started_at is not None
        job.remaining -= now - job.started_at
        job.started_at = None
        if job_id in self.stops:  # a preempted workload has stopped: back to the queue
            del self.stops[job_id]
            if job.remaining > 0:
                self.pending[job_id] = job.request
                return
        job.finished_at = now

    def _cycle(self, now: int) -> None:
        if not self.pending:
            self._record_utilisation(now)
            return
        self.cycles += 1
        decisions = run_cycle(
            self.state, list(self.pending.values()), self.scheduler_config, self.policy, explain=False
        )
        for admission in decisions.admit:
            job = self.jobs[admission.workload_id]
            del self.pending[admission.workload_id]
            job.started_at = now
            if job.first_start is None:
                job.first_start = now
            job.end_version += 1
            heapq.heappush(self.ends, (now + job.remaining, job.end_version, admission.workload_id))
        for preemption in decisions.preempt:
            job = self.jobs[preemption.workload_id]
            job.preemptions += 1
            self.preemptions += 1
            job.end_version += 1
            self.stops[preemption.workload_id] = now + self.config.grace_seconds
            heapq.heappush(
                self.ends, (now + self.config.grace_seconds, job.end_version, preemption.workload_id)
            )
        for workload_id, reason in decisions.pending.items():
            if reason.code in NEVER_RUNS:
                job = self.jobs[workload_id]
                self.failed[f"{reason.code}:{pod_type(job.request.resources)}"] += 1
                del self.pending[workload_id]
        self._record_utilisation(now)

    def _record_utilisation(self, now: int) -> None:
        used = self.capacity - self.state.cluster.gpu_free_milli
        value = 100.0 * used / self.capacity if self.capacity else 0.0
        if self.utilisation and self.utilisation[-1][0] == now:
            self.utilisation[-1] = (now, value)
        else:
            self.utilisation.append((now, value))


def replay(nodes: Sequence[NodeInfo], pods: Sequence[TracePod], config: ReplayConfig) -> ReplayReport:
    """Replay `pods` on `nodes` under `config`. Deterministic for a given input and config."""
    return _Replay(nodes, pods, config).run()


__all__ = ["ReplayConfig", "ReplayReport", "jain_index", "replay", "scale_cluster", "team_of"]
