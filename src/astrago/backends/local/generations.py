"""Generations of a local workload: a rolling update starts the workload's replicas again at a new
revision, beside the running ones, under the run-record id `<workload id>.r<revision>`. Which record
speaks for a replica is decided here: the newest live, ready one, else the newest one (so a failure of
the current generation is what the platform sees)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

_GENERATION = re.compile(r"^(?P<workload>.+)\.r(?P<revision>\d+)$")


def generation_id(workload_id: str, revision: int) -> str:
    return workload_id if revision == 0 else f"{workload_id}.r{revision}"


def logical_id(record_id: str) -> str:
    match = _GENERATION.match(record_id)
    return match["workload"] if match else record_id


def revision_of(record_id: str) -> int:
    match = _GENERATION.match(record_id)
    return int(match["revision"]) if match else 0


class Candidate(Protocol):
    @property
    def record_id(self) -> str: ...

    @property
    def live_and_ready(self) -> bool: ...


def reporting(candidates: Sequence[Candidate]) -> Candidate | None:
    """The record that speaks for one replica among its generations."""
    if not candidates:
        return None
    ready = [c for c in candidates if c.live_and_ready]
    pool = ready or list(candidates)
    return max(pool, key=lambda c: revision_of(c.record_id))
