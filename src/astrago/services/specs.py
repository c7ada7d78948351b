"""Reading the stored workload spec (normalised at submission, in scheduler units)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from astrago.domain.resources import ResourceRequest


def resource_request(spec: dict[str, Any]) -> ResourceRequest:
    return _from_resources(spec["resources"])


@lru_cache(maxsize=4096)
def resource_request_from_json(resources: str) -> ResourceRequest:
    """The request of a spec's `resources` member given as JSON text (as the scheduler's queue query
    reads it). Thousands of queued workloads share a handful of shapes: each text is decoded once, and
    equal texts give the same (immutable) object."""
    return _from_resources(json.loads(resources))


def _from_resources(resources: dict[str, Any]) -> ResourceRequest:
    return ResourceRequest(
        cpu_milli=resources["cpu_milli"],
        memory_mib=resources["memory_mib"],
        gpus=resources.get("gpus", 0),
        gpu_model=resources.get("gpu_model"),
        gpu_share_milli=resources.get("gpu_share_milli"),
        mig_profile=resources.get("mig_profile"),
    )
