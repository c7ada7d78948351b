"""The explain stage: turn why a workload waits into a PendingReason a user understands.

Every message names the numbers that matter (what is asked, what is used, what is allowed) in the units
people use: whole GPUs when a quantity is integral ("4 GPUs"), otherwise fractions ("2.5 GPUs"), cores
and GiB. Codes are the machine-readable part of the contract in `astrago.scheduler.types.PendingReason`."""

from __future__ import annotations

from enum import StrEnum

from astrago.domain.resources import ResourceRequest
from astrago.scheduler.cluster import ClusterState, RequestShape
from astrago.scheduler.types import PendingReason


class ReasonCode(StrEnum):
    INVALID = "invalid"  # the request itself is malformed
    NO_FIT = "no_fit"  # no node of this cluster could ever hold it
    QUOTA_LIMIT = (
        "quota_limit"  # the workspace's limit stops it (now, or forever when the request exceeds it)
    )
    NO_CAPACITY = "no_capacity"  # it fits the cluster, but not the free capacity right now
    RESERVED = "reserved"  # capacity is held for a workload ahead of it in the queue
    PREEMPTING = "preempting"  # victims were chosen; it starts when they have stopped


_INTERNED: dict[tuple[str, str, int], PendingReason] = {}
_INTERNED_MAX = 100_000  # about 15 MB at most; emptied when full


def pending_reason(code: str, message: str, position: int) -> PendingReason:
    """The PendingReason with these values, the same object for equal values from one cycle to the next.

    A cycle gives one to each of up to tens of thousands of queued workloads, nearly all as in the cycle
    before. Reusing them spares allocating them again and, above all, their trip into the garbage
    collector's oldest generation: 10,000 new ones per cycle made a full collection (every object of the
    process walked) every few cycles. They are immutable, so sharing is invisible to callers."""
    key = (code, message, position)
    reason = _INTERNED.get(key)
    if reason is None:
        if len(_INTERNED) >= _INTERNED_MAX:
            _INTERNED.clear()
        reason = _INTERNED[key] = PendingReason(code, message, position)
    return reason


def format_gpus(milli: int) -> str:
    """1000 → '1 GPU', 4000 → '4 GPUs', 2500 → '2.5 GPUs', 250 → '0.25 GPU'."""
    if milli % 1000 == 0:
        whole = milli // 1000
        return f"{whole} GPU" if whole == 1 else f"{whole} GPUs"
    value = f"{milli / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{value} GPU" if milli < 1000 else f"{value} GPUs"


def format_gpu_amount(milli: int) -> str:
    """Just the number, for 'x/y' pairs: 4000 → '4', 2500 → '2.5'."""
    if milli % 1000 == 0:
        return str(milli // 1000)
    return f"{milli / 1000:.3f}".rstrip("0").rstrip(".")


def format_cpu(milli: int) -> str:
    if milli % 1000 == 0:
        return f"{milli // 1000} CPU"
    return f"{milli}m CPU"


def format_memory(mib: int) -> str:
    if mib % 1024 == 0:
        return f"{mib // 1024} GiB"
    return f"{mib} MiB"


def never_fits_message(capacity: ClusterState, request: ResourceRequest) -> str:
    """Why no node could hold one replica even when empty. `capacity` is the cluster with nothing placed.
    Fenced GPUs and cordoned nodes it could otherwise use are named: they may come back."""
    shape = RequestShape.of(request)
    return _never_fits(capacity, request, shape) + capacity.unavailable_note(shape.models, shape.gpus > 0)


def _never_fits(capacity: ClusterState, request: ResourceRequest, shape: RequestShape) -> str:
    usable = capacity.schedulable
    if not usable.any():
        return "no node accepts new work"
    hosts = (
        usable & (capacity.cpu_capacity >= shape.cpu_milli) & (capacity.memory_capacity >= shape.memory_mib)
    )
    if not hosts.any():
        cpu = int(capacity.cpu_capacity[usable].max())
        memory = int(capacity.memory_capacity[usable].max())
        return (
            f"no node has {format_cpu(shape.cpu_milli)} and {format_memory(shape.memory_mib)} memory "
            f"(the largest have {format_cpu(cpu)} and {format_memory(memory)})"
        )
    of_model = f" of model {request.gpu_model}" if request.gpu_model else ""
    if shape.kind == "mig":
        return (
            f"no node with enough CPU and memory has a MIG-enabled GPU{of_model} "
            f"offering {request.mig_profile}"
        )
    per_node = capacity.gpu_allowed(shape.models).sum(axis=1)
    largest = int(per_node[hosts].max())
    if shape.kind == "share" or largest == 0:
        return f"no node with enough CPU and memory has a GPU{of_model} usable for sharing"
    return f"no node has {shape.gpus} GPUs{of_model} (the largest has {largest})"
