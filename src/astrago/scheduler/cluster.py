"""The cluster's free resources as numpy arrays, so that filtering and scoring every node is a few array ops.

Layout: N nodes × G GPU slots (G = the most GPUs any node has; missing slots are marked absent and hold 0
free). CPU in millicores, memory in MiB, GPU in milli (1000 = one whole GPU). A MIG-enabled GPU is only
usable through MIG profiles; its free milli mirrors its free memory slices so allocation ratios add up.

`apply` and `release` are the only mutators. They validate before they change anything and log the node
they touched, so incremental consumers (the fragmentation tracker) recompute only what changed."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from astrago.domain.gpu_models import canonical_gpu_model
from astrago.domain.resources import ResourceRequest
from astrago.scheduler import mig
from astrago.scheduler.types import NodeInfo, ReplicaPlacement

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

WHOLE_GPU_MILLI = 1000
_NOTES_SHOWN = 4  # fenced GPUs and cordoned nodes named in one pending reason
_instance_ids = itertools.count()


@dataclass(frozen=True, slots=True)
class RequestShape:
    """A request reduced to what placement needs. `kind` is cpu | share | whole | mig."""

    kind: str
    cpu_milli: int
    memory_mib: int
    gpus: int  # GPUs touched: 0 for cpu, 1 for share and mig, k for whole
    gpu_milli: int  # per GPU: share milli, 1000 for whole, 0 for cpu and mig
    models: frozenset[str] | None  # lower-cased allowed GPU models, None = any
    mig_profile: str | None = None

    @classmethod
    def of(cls, request: ResourceRequest) -> RequestShape:
        request.validate()
        models = None
        if request.gpu_model:
            # canonical on both sides: specs stored before names were canonical still match
            models = frozenset(
                canonical_gpu_model(m.strip()).lower() for m in request.gpu_model.split("|") if m.strip()
            )
        if request.mig_profile:
            return cls("mig", request.cpu_milli, request.memory_mib, 1, 0, models, request.mig_profile)
        if request.gpu_share_milli:
            return cls("share", request.cpu_milli, request.memory_mib, 1, request.gpu_share_milli, models)
        if request.gpus > 0:
            return cls("whole", request.cpu_milli, request.memory_mib, request.gpus, WHOLE_GPU_MILLI, models)
        return cls("cpu", request.cpu_milli, request.memory_mib, 0, 0, None)

    @property
    def total_gpu_milli(self) -> int:
        return self.gpus * self.gpu_milli


class ClusterState:
    """Free resources of every node. Build with `from_nodes`; copy before speculative changes."""

    node_names: list[str]

    def __init__(self) -> None:  # use from_nodes / copy
        self.node_names = []
        self.node_index: dict[str, int] = {}
        self.models: list[str] = []  # lower-cased GPU model names; gpu_model holds indices into it
        self.mig_families: list[mig.MigFamily] = []
        self.cpu_capacity: IntArray = np.zeros(0, np.int64)
        self.cpu_free: IntArray = np.zeros(0, np.int64)
        self.memory_capacity: IntArray = np.zeros(0, np.int64)
        self.memory_free: IntArray = np.zeros(0, np.int64)
        self.schedulable: BoolArray = np.zeros(0, np.bool_)
        self.gpu_present: BoolArray = np.zeros((0, 1), np.bool_)  # exists and healthy
        self.gpu_foreign: BoolArray = np.zeros((0, 1), np.bool_)  # held by work AstraGo did not start
        # Fenced or cordoned: present (work on it stays accounted) but never a candidate for new work.
        self.gpu_fenced: BoolArray = np.zeros((0, 1), np.bool_)
        self.fence_notes: dict[tuple[int, int], str] = {}  # (node, slot) -> why, naming the GPU
        self.cordon_notes: dict[int, str] = {}  # node -> why it takes no new work, naming it
        self.gpu_mig: BoolArray = np.zeros((0, 1), np.bool_)
        self.gpu_model: IntArray = np.zeros((0, 1), np.int64)  # -1 where absent
        self.gpu_mig_family: IntArray = np.zeros((0, 1), np.int64)  # index into mig_families, -1 = none
        self.gpu_free: IntArray = np.zeros((0, 1), np.int64)
        self.mig_used: IntArray = np.zeros((0, 1), np.int64)  # bitmask of used MIG slices
        self.node_gpu_free: IntArray = np.zeros(0, np.int64)  # row sums of gpu_free, kept current
        # Placements per node by shape: column 0 = GPU-share replicas, column k = k-whole-GPU replicas.
        self.shape_counts: IntArray = np.zeros((0, 2), np.int64)
        self.instance_id = next(_instance_ids)
        self.changed_nodes: list[int] = []  # append-only log of nodes touched by apply/release
        self._allowed_cache: dict[frozenset[str] | None, BoolArray] = {}

    # ----------------------------------------------------------------------------------------------- build
    @classmethod
    def from_nodes(cls, nodes: Sequence[NodeInfo]) -> ClusterState:
        state = cls()
        n = len(nodes)
        slots = max([len(node.gpus) for node in nodes] + [1])
        state.node_names = [node.name for node in nodes]
        state.node_index = {name: i for i, name in enumerate(state.node_names)}
        if len(state.node_index) != n:
            raise ValueError("node names must be unique")
        state.cpu_capacity = np.array([node.cpu_milli for node in nodes], np.int64)
        state.memory_capacity = np.array([node.memory_mib for node in nodes], np.int64)
        state.cpu_free = state.cpu_capacity.copy()
        state.memory_free = state.memory_capacity.copy()
        state.schedulable = np.array([node.schedulable for node in nodes], np.bool_)
        state.gpu_present = np.zeros((n, slots), np.bool_)
        state.gpu_foreign = np.zeros((n, slots), np.bool_)
        state.gpu_fenced = np.zeros((n, slots), np.bool_)
        state.gpu_mig = np.zeros((n, slots), np.bool_)
        state.gpu_model = np.full((n, slots), -1, np.int64)
        state.gpu_mig_family = np.full((n, slots), -1, np.int64)
        state.gpu_free = np.zeros((n, slots), np.int64)
        state.mig_used = np.zeros((n, slots), np.int64)
        state.shape_counts = np.zeros((n, slots + 1), np.int64)
        model_ids: dict[str, int] = {}
        family_ids: dict[str, int] = {}
        for i, node in enumerate(nodes):
            if node.cordoned:
                state.cordon_notes[i] = node.cordoned
            for slot, gpu in enumerate(node.gpus):
                model = canonical_gpu_model(gpu.model.strip()).lower()
                state.gpu_model[i, slot] = model_ids.setdefault(model, len(model_ids))
                if not gpu.healthy:
                    continue
                if gpu.fenced:
                    state.gpu_fenced[i, slot] = True
                    state.fence_notes[(i, slot)] = gpu.fenced
                state.gpu_present[i, slot] = True
                if gpu.held_by_others and not gpu.mig_enabled:
                    state.gpu_foreign[i, slot] = True  # present (it may free up) but nothing free now
                    continue
                state.gpu_free[i, slot] = WHOLE_GPU_MILLI
                if gpu.mig_enabled:
                    family = mig.mig_family_for(gpu.model, gpu.memory_mib)
                    if family is None:
                        raise ValueError(
                            f"node {node.name}: GPU {gpu.index} ({gpu.model}) does not support MIG"
                        )
                    if family.name not in family_ids:
                        family_ids[family.name] = len(state.mig_families)
                        state.mig_families.append(family)
                    state.gpu_mig[i, slot] = True
                    state.gpu_mig_family[i, slot] = family_ids[family.name]
        state.models = list(model_ids)
        state.node_gpu_free = state.gpu_free.sum(axis=1)
        return state

    def copy(self) -> ClusterState:
        other = ClusterState()
        for name, value in vars(self).items():
            setattr(other, name, value.copy() if isinstance(value, np.ndarray) else value)
        other.node_names = list(self.node_names)
        other.instance_id = next(_instance_ids)
        other.changed_nodes = []
        other._allowed_cache = dict(self._allowed_cache)  # the GPUs are the same; the cached masks stay valid
        return other

    # ----------------------------------------------------------------------------------------- properties
    @property
    def size(self) -> int:
        return len(self.node_names)

    @property
    def gpu_slots(self) -> int:
        return int(self.gpu_free.shape[1])

    @property
    def gpu_capacity_milli(self) -> int:
        return int((self.gpu_present & ~self.gpu_fenced).sum()) * WHOLE_GPU_MILLI

    @property
    def gpu_free_milli(self) -> int:
        return int(self.gpu_free.sum())

    def model_mask(self, models: frozenset[str] | None) -> BoolArray:
        """Per known model id: is it allowed by the request's model list."""
        if models is None:
            return np.ones(len(self.models), np.bool_)
        return np.array([model in models for model in self.models], np.bool_)

    def gpu_allowed(self, models: frozenset[str] | None) -> BoolArray:
        """[N, G] GPUs that exist, are healthy, are not fenced, not in MIG mode and have an allowed model.
        Only placements change over a cluster's life, not its GPUs, so the answer is cached per model list."""
        cached = self._allowed_cache.get(models)
        if cached is None:
            allowed = self.model_mask(models)
            if not len(allowed):
                cached = np.zeros_like(self.gpu_present)
            else:
                usable = self.gpu_present & ~self.gpu_mig & ~self.gpu_fenced
                cached = usable & allowed[np.maximum(self.gpu_model, 0)]
            self._allowed_cache[models] = cached
        return cached

    def host_fits(self, shape: RequestShape) -> BoolArray:
        """[N] nodes with enough free CPU and memory that accept new work."""
        return self.schedulable & (self.cpu_free >= shape.cpu_milli) & (self.memory_free >= shape.memory_mib)

    # ----------------------------------------------------------------------------------------- mutation
    def apply(self, placement: ReplicaPlacement) -> None:
        """Take the placement's resources. Raises ValueError, changing nothing, if it would over-allocate."""
        i = self._node(placement.node)
        if placement.cpu_milli < 0 or placement.memory_mib < 0:
            raise ValueError("a placement cannot hold negative resources")
        if self.cpu_free[i] < placement.cpu_milli or self.memory_free[i] < placement.memory_mib:
            raise ValueError(f"node {placement.node} has not enough free CPU or memory for this placement")
        slots = self._checked_slots(i, placement)
        if placement.mig_profile is not None:
            slot = slots[0]
            family, profile, start = self._mig_target(i, slot, placement)
            if not mig.is_legal(family, profile, start, int(self.mig_used[i, slot])):
                raise ValueError(
                    f"MIG {profile.name} at slice {start} is not free or not legal on "
                    f"{placement.node} GPU {slot}"
                )
            self.mig_used[i, slot] |= profile.mask_at(start)
            self.gpu_free[i, slot] = mig.free_milli(family, int(self.mig_used[i, slot]))
        else:
            for slot in slots:
                if self.gpu_mig[i, slot]:
                    raise ValueError(f"GPU {slot} on {placement.node} is in MIG mode: ask for a MIG profile")
                if self.gpu_free[i, slot] < placement.gpu_milli:
                    raise ValueError(
                        f"GPU {slot} on {placement.node} has {self.gpu_free[i, slot]} milli free, "
                        f"{placement.gpu_milli} asked"
                    )
            for slot in slots:
                self.gpu_free[i, slot] -= placement.gpu_milli
        self.cpu_free[i] -= placement.cpu_milli
        self.memory_free[i] -= placement.memory_mib
        self._count_shape(i, placement, +1)
        self._touched(i)

    def release(self, placement: ReplicaPlacement) -> None:
        """Give back what `apply` took. Raises ValueError if the node never held it."""
        i = self._node(placement.node)
        if (
            self.cpu_free[i] + placement.cpu_milli > self.cpu_capacity[i]
            or self.memory_free[i] + placement.memory_mib > self.memory_capacity[i]
        ):
            raise ValueError(f"releasing more CPU or memory than node {placement.node} holds")
        slots = self._checked_slots(i, placement)
        if placement.mig_profile is not None:
            slot = slots[0]
            family, profile, start = self._mig_target(i, slot, placement)
            mask = profile.mask_at(start)
            if int(self.mig_used[i, slot]) & mask != mask:
                raise ValueError(f"MIG {profile.name} at slice {start} is not in use on {placement.node}")
            self.mig_used[i, slot] &= ~mask
            self.gpu_free[i, slot] = mig.free_milli(family, int(self.mig_used[i, slot]))
        else:
            for slot in slots:
                if self.gpu_free[i, slot] + placement.gpu_milli > WHOLE_GPU_MILLI:
                    raise ValueError(f"releasing more of GPU {slot} than node {placement.node} has in use")
            for slot in slots:
                self.gpu_free[i, slot] += placement.gpu_milli
        self.cpu_free[i] += placement.cpu_milli
        self.memory_free[i] += placement.memory_mib
        self._count_shape(i, placement, -1)
        self._touched(i)

    # ------------------------------------------------------------------------------------------ queries
    def can_ever_fit(self, request: ResourceRequest) -> bool:
        """Would the request fit on some schedulable node if that node were empty?"""
        shape = RequestShape.of(request)
        hosts = (
            self.schedulable
            & (self.cpu_capacity >= shape.cpu_milli)
            & (self.memory_capacity >= shape.memory_mib)
        )
        if shape.kind == "cpu":
            return bool(hosts.any())
        if shape.kind == "mig":
            return bool((hosts[:, None] & self.mig_capable(shape)).any())
        per_node = self.gpu_allowed(shape.models).sum(axis=1)
        return bool((hosts & (per_node >= shape.gpus)).any())

    def free_summary(self, request: ResourceRequest) -> str:
        """One sentence on why the request does not fit now, naming the resource that is short, and what is
        kept out of new placements (fenced GPUs, cordoned nodes) that it could otherwise use."""
        shape = RequestShape.of(request)
        summary = self._free_summary(shape)
        if summary == "a node has room now":
            return summary
        return summary + self.unavailable_note(shape.models, shape.gpus > 0)

    def _free_summary(self, shape: RequestShape) -> str:
        if not self.schedulable.any():
            return "no node accepts new work"
        hosts = self.host_fits(shape)
        if not hosts.any():
            return self._host_shortage(shape)
        if shape.kind == "cpu":
            return "a node has room now"
        model_note = f" of model {'|'.join(sorted(shape.models))}" if shape.models else ""
        if shape.kind == "mig":
            if not self._mig_room(shape, hosts):
                return (
                    f"no node with free CPU and memory has a MIG GPU{model_note} "
                    f"with a free {shape.mig_profile} slot"
                )
            return "a node has room now"
        allowed = self.gpu_allowed(shape.models) & hosts[:, None]
        if shape.kind == "share":
            best = int(np.where(allowed, self.gpu_free, 0).max())
            if best >= shape.gpu_milli:
                return "a node has room now"
            return (
                f"no GPU{model_note} has {shape.gpu_milli} milli free on a node with room for the CPU and "
                f"memory; the largest free share is {best} milli{self._foreign_note(allowed)}"
            )
        whole_free = (allowed & (self.gpu_free == WHOLE_GPU_MILLI)).sum(axis=1)
        largest = int(whole_free.max())
        if largest >= shape.gpus:
            return "a node has room now"
        return (
            f"no node has {shape.gpus} free GPUs{model_note} with room for the CPU and memory; "
            f"the largest free is {largest}{self._foreign_note(allowed)}"
        )

    def _host_shortage(self, shape: RequestShape) -> str:
        """No node has the CPU and memory free: say which of the two is short (or that no node has both)."""
        usable = self.schedulable
        cpu_free = int(self.cpu_free[usable].max())
        memory_free = int(self.memory_free[usable].max())
        cpu_ok = usable & (self.cpu_free >= shape.cpu_milli)
        memory_ok = usable & (self.memory_free >= shape.memory_mib)
        if not cpu_ok.any() and not memory_ok.any():
            return (
                f"CPU and memory are short: no node has {shape.cpu_milli}m CPU or {shape.memory_mib} MiB "
                f"memory free (the most free is {cpu_free}m CPU, {memory_free} MiB)"
            )
        if not cpu_ok.any():
            return f"CPU is short: no node has {shape.cpu_milli}m CPU free (the most free is {cpu_free}m)"
        if not memory_ok.any():
            return (
                f"memory is short: no node has {shape.memory_mib} MiB memory free "
                f"(the most free is {memory_free} MiB)"
            )
        return (
            f"no node has {shape.cpu_milli}m CPU and {shape.memory_mib} MiB memory free at once "
            f"(nodes with enough of one lack the other)"
        )

    def _foreign_note(self, allowed: BoolArray) -> str:
        held = int((self.gpu_foreign & allowed).sum())
        if not held:
            return ""
        if held == 1:
            return "; 1 GPU there is held by pods AstraGo did not create"
        return f"; {held} GPUs there are held by pods AstraGo did not create"

    # ----------------------------------------------------------------------------------------- internals
    def _node(self, name: str) -> int:
        try:
            return self.node_index[name]
        except KeyError:
            raise ValueError(f"unknown node {name!r}") from None

    def _checked_slots(self, i: int, placement: ReplicaPlacement) -> tuple[int, ...]:
        slots = placement.gpu_indices
        if len(set(slots)) != len(slots):
            raise ValueError("a placement names the same GPU twice")
        for slot in slots:
            if not 0 <= slot < self.gpu_slots or not self.gpu_present[i, slot]:
                raise ValueError(f"node {placement.node} has no usable GPU {slot}")
        if placement.mig_profile is not None and len(slots) != 1:
            raise ValueError("a MIG placement names exactly one GPU")
        if placement.mig_profile is None and not 0 <= placement.gpu_milli <= WHOLE_GPU_MILLI:
            raise ValueError("gpu_milli per GPU must be between 0 and 1000")
        if placement.mig_profile is None and slots and placement.gpu_milli == 0:
            raise ValueError("a placement that names GPUs must take some of them")
        return slots

    def _mig_target(
        self, i: int, slot: int, placement: ReplicaPlacement
    ) -> tuple[mig.MigFamily, mig.MigProfile, int]:
        family_id = int(self.gpu_mig_family[i, slot])
        if family_id < 0:
            raise ValueError(f"GPU {slot} on {placement.node} is not in MIG mode")
        family = self.mig_families[family_id]
        profile = family.profile(placement.mig_profile or "")
        if profile is None or placement.mig_start is None:
            raise ValueError(
                f"{placement.mig_profile!r} is not a {family.name} MIG profile with a start slice"
            )
        return family, profile, placement.mig_start

    def mig_capable(self, shape: RequestShape) -> BoolArray:
        """[N, G] MIG GPUs of an allowed model whose geometry offers the requested profile."""
        allowed = self.model_mask(shape.models)
        capable = np.zeros_like(self.gpu_present)
        for family_id, family in enumerate(self.mig_families):
            if family.profile(shape.mig_profile or "") is not None:
                capable |= self.gpu_mig_family == family_id
        if len(allowed):
            capable &= allowed[np.maximum(self.gpu_model, 0)]
        return capable & self.gpu_present & ~self.gpu_fenced

    def unavailable_note(self, models: frozenset[str] | None, wants_gpu: bool) -> str:
        """What is kept out of new placements that the request could otherwise use: cordoned nodes and
        fenced GPUs of an allowed model, each named ("; GPU 2 on node a is fenced: XID 79 (...)")."""
        notes = [self.cordon_notes[i] for i in sorted(self.cordon_notes)]
        if wants_gpu:
            allowed = self.model_mask(models)
            for (i, slot), note in sorted(self.fence_notes.items()):
                model = int(self.gpu_model[i, slot])
                if i not in self.cordon_notes and (not len(allowed) or allowed[model]):
                    notes.append(note)
        if not notes:
            return ""
        shown = notes[:_NOTES_SHOWN]
        more = len(notes) - len(shown)
        return "; " + "; ".join(shown) + (f"; and {more} more kept out of new placements" if more else "")

    def _mig_room(self, shape: RequestShape, hosts: BoolArray) -> bool:
        """Does some MIG GPU on a host with room have a free legal start for the requested profile?"""
        for i, slot in zip(*np.nonzero(self.mig_capable(shape) & hosts[:, None]), strict=True):
            family = self.mig_families[int(self.gpu_mig_family[i, slot])]
            profile = family.profile(shape.mig_profile or "")
            if profile is not None and mig.free_starts(family, profile, int(self.mig_used[i, slot])):
                return True
        return False

    def _touched(self, i: int) -> None:
        self.node_gpu_free[i] = self.gpu_free[i].sum()
        self.changed_nodes.append(i)

    def _count_shape(self, i: int, placement: ReplicaPlacement, sign: int) -> None:
        if placement.mig_profile is not None or not placement.gpu_indices:
            return
        column = (
            0 if placement.gpu_milli < WHOLE_GPU_MILLI else min(len(placement.gpu_indices), self.gpu_slots)
        )
        self.shape_counts[i, column] += sign
