"""AdmissionQueue: fifo, priority and progressive fair share."""

from __future__ import annotations

import pytest

from astrago.scheduler.queueing import AdmissionQueue, QueueDiscipline, parse_discipline
from astrago.scheduler.quota import Capacity, QuotaLedger, Usage
from astrago.scheduler.state import demand_of
from astrago.scheduler.types import Quota, WorkloadRequest
from tests.unit.scheduler.engine_factories import GPU, job

CLUSTER = Capacity(gpu_milli=16 * GPU, cpu_milli=256_000, memory_mib=1024 * 1024)


def drain(queue: AdmissionQueue, ledger: QuotaLedger | None = None) -> list[str]:
    """Pop everything; when a ledger is given, charge each popped workload as if it were admitted."""
    order = []
    while (workload := queue.pop()) is not None:
        order.append(workload.id)
        if ledger is not None:
            ledger.add(workload.workspace, demand_of(workload))
    return order


def make(discipline: QueueDiscipline, pending: list[WorkloadRequest], ledger: QuotaLedger) -> AdmissionQueue:
    return AdmissionQueue(pending, discipline, ledger, demand_of)


PENDING = [
    job("a1", "a", seq=1),
    job("a2", "a", seq=2, priority=5),
    job("b1", "b", seq=3),
    job("b2", "b", seq=4),
]


def test_fifo_is_submission_order() -> None:
    book = QuotaLedger({}, CLUSTER)

    assert drain(make(QueueDiscipline.FIFO, PENDING, book)) == ["a1", "a2", "b1", "b2"]


def test_priority_then_submission_order() -> None:
    book = QuotaLedger({}, CLUSTER)

    assert drain(make(QueueDiscipline.PRIORITY, PENDING, book)) == ["a2", "a1", "b1", "b2"]


def test_fair_share_alternates_between_equal_workspaces() -> None:
    quotas = {"a": Quota(gpu_guaranteed_milli=4 * GPU), "b": Quota(gpu_guaranteed_milli=4 * GPU)}
    book = QuotaLedger(quotas, CLUSTER)
    pending = [job(f"a{i}", "a", seq=i) for i in range(3)] + [job(f"b{i}", "b", seq=10 + i) for i in range(3)]

    assert drain(make(QueueDiscipline.FAIRSHARE, pending, book), book) == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_fair_share_serves_the_workspace_furthest_below_its_guarantee() -> None:
    quotas = {"a": Quota(gpu_guaranteed_milli=4 * GPU), "b": Quota(gpu_guaranteed_milli=4 * GPU)}
    book = QuotaLedger(quotas, CLUSTER)
    book.add("a", Usage(gpu_milli=3 * GPU))

    order = drain(make(QueueDiscipline.FAIRSHARE, [job("a0", "a", seq=0), job("b0", "b", seq=1)], book))

    assert order == ["b0", "a0"]


def test_work_inside_a_guarantee_goes_before_borrowers_even_of_higher_priority() -> None:
    quotas = {"a": Quota(gpu_guaranteed_milli=1 * GPU), "b": Quota()}
    book = QuotaLedger(quotas, CLUSTER)
    pending = [job("borrower", "b", seq=0, priority=9), job("owner", "a", seq=1)]

    assert drain(make(QueueDiscipline.FAIRSHARE, pending, book)) == ["owner", "borrower"]


def test_within_a_workspace_priority_then_age() -> None:
    book = QuotaLedger({}, CLUSTER)
    pending = [job("old", "a", seq=1), job("new-urgent", "a", seq=2, priority=3), job("older", "a", seq=0)]

    assert drain(make(QueueDiscipline.FAIRSHARE, pending, book)) == ["new-urgent", "older", "old"]


def test_unknown_discipline_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="fifo, priority, fairshare"):
        parse_discipline("lifo")
