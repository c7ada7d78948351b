"""What one run of the benchmark measured, per system and per store size."""

from __future__ import annotations

from dataclasses import dataclass, field

from api_system import SystemInfo
from measure import IdleResult, Latency, SubmitResult, WalkResult


@dataclass
class Checkpoint:
    store_size: int
    submit: SubmitResult  # the submissions since the previous checkpoint
    idle: IdleResult
    latencies: dict[str, Latency]
    list_per_second: float
    walk: WalkResult
    load_average: tuple[float, float, float]


@dataclass
class SystemRun:
    info: SystemInfo
    ready_s: float
    install_s: float | None
    # the store size it was meant to reach, when the submit budget ran out first
    budget_ran_out_before: int | None = None
    checkpoints: list[Checkpoint] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    concurrency: int
    rounds: int
    page: int
    throughput_s: float
    idle_s: float
    submit_budget_s: float  # per system, over all its submissions
