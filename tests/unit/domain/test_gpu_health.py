from __future__ import annotations

import pytest

from astrago.domain.gpu_health import (
    HEALTHY,
    XID_TABLE,
    CounterPoint,
    GpuHealth,
    GpuHealthState,
    HealthSignals,
    condition_health,
    counter_increase,
    describe_xid,
    next_health,
)


@pytest.mark.parametrize("xid", [48, 63, 64, 74, 79, 94, 95])
def test_the_issues_fatal_xids_fence_the_gpu_with_the_cause_named(xid: int) -> None:
    health = next_health(HEALTHY, HealthSignals(), [xid])
    assert health.state is GpuHealthState.UNHEALTHY
    assert health.cause == f"XID {xid} ({XID_TABLE[xid].meaning})"
    assert health.sticky


def test_xid_79_reads_as_fallen_off_the_bus() -> None:
    assert describe_xid(79) == "XID 79 (GPU fallen off the bus)"
    assert describe_xid(9999) == "XID 9999 (not in the catalogue this version knows)"


@pytest.mark.parametrize("xid", [13, 31, 43, 9999])
def test_application_and_unknown_xids_are_informational(xid: int) -> None:
    assert next_health(HEALTHY, HealthSignals(), [xid]) == HEALTHY


def test_an_xid_fence_survives_clean_readings_until_cleared() -> None:
    fenced = next_health(HEALTHY, HealthSignals(), [79])
    assert next_health(fenced, HealthSignals(ecc_uncorrectable=0), []) == fenced


def test_the_last_fencing_xid_of_a_reading_is_the_cause() -> None:
    health = next_health(HEALTHY, HealthSignals(), [13, 48, 79, 31])
    assert health.cause == describe_xid(79)


@pytest.mark.parametrize(
    ("signals", "cause"),
    [
        (HealthSignals(lost=True), "GPU is lost (NVML GpuIsLost: it stopped answering)"),
        (HealthSignals(ecc_uncorrectable=1), "1 uncorrectable ECC error since the driver loaded"),
        (HealthSignals(ecc_uncorrectable=3), "3 uncorrectable ECC errors since the driver loaded"),
        (HealthSignals(remapped_rows_pending=True), "memory row remapping pending (needs a GPU reset)"),
        (HealthSignals(retired_pages_pending=True), "memory page retirement pending (needs a GPU reset)"),
        (HealthSignals(remapping_failed=True), "row remapping failed (no spare memory rows left)"),
    ],
)
def test_conditions_fence_while_they_last(signals: HealthSignals, cause: str) -> None:
    health = next_health(HEALTHY, signals)
    assert health == GpuHealth(GpuHealthState.UNHEALTHY, cause)
    assert next_health(health, HealthSignals()) == HEALTHY  # cleared (e.g. after a GPU reset)


def test_a_slowdown_degrades_but_does_not_fence() -> None:
    health = next_health(HEALTHY, HealthSignals(slowdowns=("sw_thermal", "hw_thermal")))
    assert health == GpuHealth(GpuHealthState.DEGRADED, "clocks slowed down (hw thermal, sw thermal)")
    assert not health.fenced


def test_unknown_signals_are_not_read_as_broken() -> None:
    assert next_health(HEALTHY, HealthSignals(ecc_uncorrectable=None, remapped_rows_pending=None)) == HEALTHY


def test_the_cluster_exporters_conditions_fence_with_their_own_words() -> None:
    assert condition_health(HealthSignals(unanswered=True)).cause == (
        "GPU did not answer its node's GPU exporter (lost or unreachable)"
    )
    pending = condition_health(HealthSignals(memory_repair_pending=True))
    assert pending.fenced
    assert "memory repair pending" in (pending.cause or "")
    assert condition_health(HealthSignals(memory_repair_pending=False)) == HEALTHY


@pytest.mark.parametrize(
    ("previous", "points", "increase"),
    [
        (CounterPoint(2), [CounterPoint(2), CounterPoint(2)], 0),  # no change
        (CounterPoint(2), [CounterPoint(3), CounterPoint(5)], 3),  # rose
        (None, [CounterPoint(1)], 1),  # a new series counts from 0
        (CounterPoint(4), [CounterPoint(0), CounterPoint(1)], 1),  # dropped: a reset, then one new
        (CounterPoint(1, started=100), [CounterPoint(1, started=200)], 1),  # restarted at the same value
        (CounterPoint(1, started=100), [CounterPoint(1, started=100)], 0),  # same exporter, same count
        (CounterPoint(1, started=100), [CounterPoint(1), CounterPoint(2, started=100)], 1),  # start unknown
    ],
)
def test_counter_increase_counts_across_resets(
    previous: CounterPoint | None, points: list[CounterPoint], increase: float
) -> None:
    assert counter_increase(previous, points) == increase
