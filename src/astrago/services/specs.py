"""Reading the stored workload spec (normalised at submission, in scheduler units)."""

from __future__ import annotations

from typing import Any

from astrago.domain.resources import ResourceRequest


def resource_request(spec: dict[str, Any]) -> ResourceRequest:
    resources = spec["resources"]
    return ResourceRequest(
        cpu_milli=resources["cpu_milli"],
        memory_mib=resources["memory_mib"],
        gpus=resources.get("gpus", 0),
        gpu_model=resources.get("gpu_model"),
        gpu_share_milli=resources.get("gpu_share_milli"),
        mig_profile=resources.get("mig_profile"),
    )
