"""QuotaLedger: limits, guarantees, borrowing and fair share with known numbers."""

from __future__ import annotations

import math

import pytest

from astrago.scheduler.quota import Capacity, QuotaLedger, Usage
from astrago.scheduler.types import Quota

GPU = 1000
CLUSTER = Capacity(gpu_milli=16 * GPU, cpu_milli=256_000, memory_mib=1024 * 1024)


def ledger(**quotas: Quota) -> QuotaLedger:
    return QuotaLedger(quotas, CLUSTER)


def test_limit_message_uses_whole_gpus() -> None:
    book = ledger(ml=Quota(gpu_limit_milli=4 * GPU))
    book.add("ml", Usage(gpu_milli=4 * GPU))

    assert book.limit_problem("ml", Usage(gpu_milli=2 * GPU)) == (
        "workspace ml is at its GPU limit 4/4; this workload needs 2 GPUs"
    )


def test_limit_message_with_fractions_and_room_left() -> None:
    book = ledger(ml=Quota(gpu_limit_milli=3 * GPU))
    book.add("ml", Usage(gpu_milli=2500))

    assert book.limit_problem("ml", Usage(gpu_milli=1 * GPU)) == (
        "workspace ml would exceed its GPU limit: 2.5/3 in use, this workload needs 1 GPU"
    )
    assert book.limit_problem("ml", Usage(gpu_milli=500)) is None


def test_cpu_and_memory_limits() -> None:
    book = ledger(ml=Quota(cpu_limit_milli=8000, memory_limit_mib=16 * 1024))
    book.add("ml", Usage(cpu_milli=8000))

    problem = book.limit_problem("ml", Usage(cpu_milli=500))
    assert problem is not None
    assert "CPU limit 8/8" in problem
    assert book.limit_problem("ml", Usage(memory_mib=20 * 1024)) is not None


def test_workspace_without_quota_is_unlimited() -> None:
    book = ledger()
    book.add("free", Usage(gpu_milli=1000 * GPU))

    assert book.limit_problem("free", Usage(gpu_milli=1000 * GPU)) is None


def test_permanent_limit_problem_only_for_requests_above_the_limit() -> None:
    book = ledger(ml=Quota(gpu_limit_milli=4 * GPU))
    book.add("ml", Usage(gpu_milli=4 * GPU))

    assert book.permanent_limit_problem("ml", Usage(gpu_milli=4 * GPU)) is None
    assert "can never run" in (book.permanent_limit_problem("ml", Usage(gpu_milli=5 * GPU)) or "")


def test_guarantee_and_borrowing() -> None:
    book = ledger(ml=Quota(gpu_guaranteed_milli=2 * GPU))
    book.add("ml", Usage(gpu_milli=1 * GPU))

    assert book.within_guarantee("ml", Usage(gpu_milli=1 * GPU))
    assert not book.within_guarantee("ml", Usage(gpu_milli=2 * GPU))
    assert not book.is_borrowed("ml", Usage(gpu_milli=1 * GPU))
    book.add("ml", Usage(gpu_milli=2 * GPU))  # 3 used, 2 guaranteed
    assert book.is_borrowed("ml", Usage(gpu_milli=1 * GPU))
    assert not book.is_borrowed("ml", Usage(gpu_milli=2 * GPU))  # would leave 1 < 2 guaranteed
    assert book.over_guarantee("ml")


def test_cpu_is_not_governed_unless_the_quota_mentions_it() -> None:
    book = ledger(ml=Quota(gpu_guaranteed_milli=2 * GPU))
    book.add("ml", Usage(cpu_milli=64_000))

    assert not book.is_borrowed("ml", Usage(cpu_milli=1000))
    assert book.within_guarantee("ml", Usage(cpu_milli=64_000))


def test_per_model_limits_and_guarantees() -> None:
    book = ledger(ml=Quota(gpu_models=(("h100", 1 * GPU, 2 * GPU),)))
    book.add("ml", Usage(gpu_milli=2 * GPU, gpu_by_model=(("h100", 2 * GPU),)))

    assert book.models_within_limit("ml", ["a100", "h100"], 1 * GPU) == ["a100"]
    assert book.is_borrowed("ml", Usage(gpu_milli=GPU, gpu_by_model=(("h100", GPU),)))
    assert "h100 2/2" in book.model_limit_message("ml", ["h100"], GPU)


def test_fair_share_is_dominant_usage_over_guarantee() -> None:
    book = ledger(a=Quota(gpu_guaranteed_milli=4 * GPU), b=Quota(gpu_guaranteed_milli=8 * GPU), c=Quota())
    book.add("a", Usage(gpu_milli=2 * GPU))
    book.add("b", Usage(gpu_milli=2 * GPU))
    book.add("c", Usage(gpu_milli=1 * GPU))

    assert book.fair_share("a")[0] == pytest.approx(0.5)
    assert book.fair_share("b")[0] == pytest.approx(0.25)
    assert math.isinf(book.fair_share("c")[0])  # no guarantee: behind everyone with one
    assert book.fair_share("c")[1] == pytest.approx(1 / 16)


def test_copy_is_independent() -> None:
    book = ledger()
    clone = book.copy()
    clone.add("x", Usage(gpu_milli=GPU))

    assert book.used("x").gpu_milli == 0
