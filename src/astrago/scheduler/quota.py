"""Workspace quotas: what each workspace uses, what it is guaranteed, what it may never exceed.

Semantics (the vocabulary of Kueue cohorts and Run:ai over-quota, with the whole cluster as one cohort):

* **limit** is a hard cap. A workload that would take its workspace past a limit waits (`quota_limit`);
  one whose request alone exceeds a limit can never run and says so.
* **guaranteed** is a promise. Usage up to it is never preempted by another workspace: a workload is taken
  from a workspace only when the workspace stays at or above its guarantee without it. Usage above it is
  *borrowed* idle capacity: allowed up to the limit, and reclaimed by preemption when a workspace that is
  below its own guarantee needs the room.
* A resource is *governed* when the quota says something about it: GPUs always (the point of the platform:
  a workspace without a GPU guarantee borrows every GPU it uses), CPU and memory only when a guarantee or a
  limit is set for them, so a GPU-only quota does not make every CPU-only job preemptible.
* Per-GPU-model entries add a guarantee and a limit for GPUs of that model on top of the totals.

Everything is integral: milli-GPU, milli-CPU, MiB."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from astrago.scheduler.explain import format_cpu, format_gpu_amount, format_gpus, format_memory
from astrago.scheduler.types import Quota

UNLIMITED_QUOTA = Quota()


@dataclass(frozen=True, slots=True)
class Usage:
    """Resources held (or asked for) by one workload. `gpu_by_model` is only known once GPUs are chosen."""

    gpu_milli: int = 0
    cpu_milli: int = 0
    memory_mib: int = 0
    gpu_by_model: tuple[tuple[str, int], ...] = ()

    def model_milli(self, model: str) -> int:
        return sum(milli for name, milli in self.gpu_by_model if name == model)


@dataclass(slots=True)
class _Account:
    gpu_milli: int = 0
    cpu_milli: int = 0
    memory_mib: int = 0
    gpu_by_model: dict[str, int] = field(default_factory=dict)

    def add(self, usage: Usage, sign: int) -> None:
        self.gpu_milli += sign * usage.gpu_milli
        self.cpu_milli += sign * usage.cpu_milli
        self.memory_mib += sign * usage.memory_mib
        for model, milli in usage.gpu_by_model:
            self.gpu_by_model[model] = self.gpu_by_model.get(model, 0) + sign * milli

    def copy(self) -> _Account:
        return _Account(self.gpu_milli, self.cpu_milli, self.memory_mib, dict(self.gpu_by_model))


@dataclass(frozen=True, slots=True)
class Capacity:
    """Cluster totals, for fair-share tie-breaks between workspaces without guarantees."""

    gpu_milli: int
    cpu_milli: int
    memory_mib: int


class QuotaLedger:
    """Mutable usage per workspace against its quota. The engine copies it for what-if questions."""

    def __init__(self, quotas: Mapping[str, Quota], capacity: Capacity) -> None:
        # GPU model names compare case-insensitively, as placement does ("H100" in a quota, "h100" on a node).
        self._quotas = {
            name: replace(
                quota, gpu_models=tuple((m.strip().lower(), g, lim) for m, g, lim in quota.gpu_models)
            )
            for name, quota in quotas.items()
        }
        self._capacity = capacity
        self._accounts: dict[str, _Account] = {}
        self._versions: dict[str, int] = {}  # bumped on every change of a workspace's usage

    def copy(self) -> QuotaLedger:
        clone = QuotaLedger.__new__(QuotaLedger)  # the quotas are already normalised: share them
        clone._quotas = self._quotas
        clone._capacity = self._capacity
        clone._accounts = {name: account.copy() for name, account in self._accounts.items()}
        clone._versions = dict(self._versions)
        return clone

    def quota(self, workspace: str) -> Quota:
        return self._quotas.get(workspace, UNLIMITED_QUOTA)

    def _account(self, workspace: str) -> _Account:
        account = self._accounts.get(workspace)
        if account is None:
            account = self._accounts[workspace] = _Account()
        return account

    def add(self, workspace: str, usage: Usage) -> None:
        self._account(workspace).add(usage, +1)
        self._versions[workspace] = self._versions.get(workspace, 0) + 1

    def remove(self, workspace: str, usage: Usage) -> None:
        self._account(workspace).add(usage, -1)
        self._versions[workspace] = self._versions.get(workspace, 0) + 1

    def version(self, workspace: str) -> int:
        """Changes whenever the workspace's usage does: callers cache what they derive from it."""
        return self._versions.get(workspace, 0)

    def used(self, workspace: str) -> Usage:
        account = self._account(workspace)
        return Usage(
            account.gpu_milli,
            account.cpu_milli,
            account.memory_mib,
            tuple(sorted(account.gpu_by_model.items())),
        )

    # ---- limits -------------------------------------------------------------------------------------

    def limit_problem(self, workspace: str, demand: Usage) -> str | None:
        """Why `demand` on top of the current usage would break a limit, or None when it would not."""
        quota, account = self.quota(workspace), self._account(workspace)
        checks = (
            (
                "GPU",
                account.gpu_milli,
                demand.gpu_milli,
                quota.gpu_limit_milli,
                format_gpu_amount,
                format_gpus,
            ),
            ("CPU", account.cpu_milli, demand.cpu_milli, quota.cpu_limit_milli, _cpu_amount, format_cpu),
            (
                "memory",
                account.memory_mib,
                demand.memory_mib,
                quota.memory_limit_mib,
                _mem_amount,
                format_memory,
            ),
        )
        for label, used, wanted, limit, amount, total in checks:
            if limit is not None and wanted > 0 and used + wanted > limit:
                return _limit_message(workspace, label, used, wanted, limit, amount, total)
        for model, _, model_limit in quota.gpu_models:
            wanted = demand.model_milli(model)
            used = account.gpu_by_model.get(model, 0)
            if model_limit is not None and wanted > 0 and used + wanted > model_limit:
                label = f"{model} GPU"
                return _limit_message(
                    workspace, label, used, wanted, model_limit, format_gpu_amount, format_gpus
                )
        return None

    def permanent_limit_problem(self, workspace: str, demand: Usage) -> str | None:
        """Why `demand` can never run in this workspace (it exceeds a limit on its own), or None."""
        quota = self.quota(workspace)
        checks = (
            ("GPU", demand.gpu_milli, quota.gpu_limit_milli, format_gpus),
            ("CPU", demand.cpu_milli, quota.cpu_limit_milli, format_cpu),
            ("memory", demand.memory_mib, quota.memory_limit_mib, format_memory),
        )
        for label, wanted, limit, fmt in checks:
            if limit is not None and wanted > limit:
                return (
                    f"this workload needs {fmt(wanted)} but workspace {workspace}'s {label} limit is "
                    f"{fmt(limit)}; it can never run there"
                )
        return None

    def models_within_limit(self, workspace: str, models: Iterable[str], gpu_milli: int) -> list[str]:
        """The GPU models this workspace may still place `gpu_milli` on, given its per-model limits."""
        limits = {model: limit for model, _, limit in self.quota(workspace).gpu_models}
        account = self._account(workspace)
        allowed = []
        for model in models:
            limit = limits.get(model)
            if limit is None or account.gpu_by_model.get(model, 0) + gpu_milli <= limit:
                allowed.append(model)
        return allowed

    def model_limit_message(self, workspace: str, models: Iterable[str], gpu_milli: int) -> str:
        limits = {model: limit for model, _, limit in self.quota(workspace).gpu_models}
        account = self._account(workspace)
        parts = []
        for model in models:
            limit = limits.get(model)
            if limit is not None:
                used = account.gpu_by_model.get(model, 0)
                parts.append(f"{model} {format_gpu_amount(used)}/{format_gpu_amount(limit)}")
        return (
            f"workspace {workspace} is at its per-model GPU limits ({', '.join(parts)}); "
            f"this workload needs {format_gpus(gpu_milli)}"
        )

    # ---- guarantees and borrowing -------------------------------------------------------------------

    def within_guarantee(self, workspace: str, demand: Usage, models: Iterable[str] = ()) -> bool:
        """Would `demand` on top of current usage stay inside the workspace's guarantee on every governed
        resource it touches? (A GPU request whose model is not known yet is checked against per-model
        guarantees only when every model it may land on has one.)"""
        quota, account = self.quota(workspace), self._account(workspace)
        for used, wanted, guaranteed, governed in self._dimensions(quota, account, demand):
            if governed and wanted > 0 and used + wanted > guaranteed:
                return False
        model_guarantees = {model: guaranteed for model, guaranteed, _ in quota.gpu_models}
        candidates = list(models)
        if demand.gpu_milli > 0 and candidates and all(model in model_guarantees for model in candidates):
            return any(
                account.gpu_by_model.get(model, 0) + demand.gpu_milli <= model_guarantees[model]
                for model in candidates
            )
        return True

    def governs(self, workspace: str, demand: Usage) -> bool:
        """Does the workspace's quota say anything about a resource `demand` uses? Only such a demand can
        claim a guarantee (a CPU-only job of a workspace with only a GPU quota reclaims nothing)."""
        quota, account = self.quota(workspace), self._account(workspace)
        return any(
            governed and wanted > 0 for _, wanted, _, governed in self._dimensions(quota, account, demand)
        )

    def is_borrowed(self, workspace: str, held: Usage) -> bool:
        """Does `held` (what one running workload holds) lie wholly above the workspace's guarantee? True
        when it uses some governed resource and, on every governed resource and GPU model it uses, the
        workspace would still be at or above its guarantee without it. Only such workloads may be taken
        by another workspace, so no workspace is ever pushed below its guarantee."""
        quota, account = self.quota(workspace), self._account(workspace)
        touches_governed = False
        for used, amount, guaranteed, governed in self._dimensions(quota, account, held):
            if governed and amount > 0:
                touches_governed = True
                if used - amount < guaranteed:
                    return False
        for model, guaranteed, _ in quota.gpu_models:
            amount = held.model_milli(model)
            if amount > 0 and account.gpu_by_model.get(model, 0) - amount < guaranteed:
                return False
        return touches_governed

    def over_guarantee(self, workspace: str) -> bool:
        """Is the workspace above its guarantee on any governed resource or GPU model?"""
        quota, account = self.quota(workspace), self._account(workspace)
        for used, _, guaranteed, governed in self._dimensions(quota, account, Usage()):
            if governed and used > guaranteed:
                return True
        return any(
            account.gpu_by_model.get(model, 0) > guaranteed for model, guaranteed, _ in quota.gpu_models
        )

    def fair_share(self, workspace: str) -> tuple[float, float]:
        """(dominant usage ÷ guarantee over governed resources, dominant usage ÷ cluster capacity).

        Lower goes first. A workspace using a governed resource it has no guarantee for is at +inf on the
        first component; the second breaks ties between such workspaces (plain DRF)."""
        quota, account = self.quota(workspace), self._account(workspace)
        versus_guarantee = 0.0
        for used, _, guaranteed, governed in self._dimensions(quota, account, Usage()):
            if not governed or used <= 0:
                continue
            versus_guarantee = max(versus_guarantee, used / guaranteed if guaranteed > 0 else math.inf)
        capacity = self._capacity
        versus_cluster = max(
            account.gpu_milli / capacity.gpu_milli if capacity.gpu_milli else 0.0,
            account.cpu_milli / capacity.cpu_milli if capacity.cpu_milli else 0.0,
            account.memory_mib / capacity.memory_mib if capacity.memory_mib else 0.0,
        )
        return versus_guarantee, versus_cluster

    @staticmethod
    def _dimensions(quota: Quota, account: _Account, demand: Usage) -> tuple[tuple[int, int, int, bool], ...]:
        """(used, wanted, guaranteed, governed) for GPU, CPU and memory."""
        return (
            (account.gpu_milli, demand.gpu_milli, quota.gpu_guaranteed_milli, True),
            (
                account.cpu_milli,
                demand.cpu_milli,
                quota.cpu_guaranteed_milli,
                quota.cpu_guaranteed_milli > 0 or quota.cpu_limit_milli is not None,
            ),
            (
                account.memory_mib,
                demand.memory_mib,
                quota.memory_guaranteed_mib,
                quota.memory_guaranteed_mib > 0 or quota.memory_limit_mib is not None,
            ),
        )


def _cpu_amount(milli: int) -> str:
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _mem_amount(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _limit_message(
    workspace: str,
    label: str,
    used: int,
    wanted: int,
    limit: int,
    amount: Callable[[int], str],
    total: Callable[[int], str],
) -> str:
    if used >= limit:
        return (
            f"workspace {workspace} is at its {label} limit {amount(used)}/{amount(limit)}; "
            f"this workload needs {total(wanted)}"
        )
    return (
        f"workspace {workspace} would exceed its {label} limit: {amount(used)}/{amount(limit)} in use, "
        f"this workload needs {total(wanted)}"
    )
