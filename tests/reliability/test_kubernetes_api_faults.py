"""The Kubernetes API failing (500s) and then slow (answers past the client's timeout) under a running
server: AstraGo keeps answering, loses nothing, starts nothing twice, and catches up when the API is back.
Against the kmock emulator (no real Kubernetes API server can run on the test machines); the scenario and
what it measures are in kubernetes_outage.py, and benchmarks/faults runs it for minutes."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.kubernetes_outage import run_outage


async def test_a_failing_then_slow_kubernetes_api_loses_nothing_and_starts_nothing_twice(
    tmp_path: Path,
) -> None:
    report = await run_outage(tmp_path, wave=2, error_s=3, slow_s=3, slow_delay_s=11)
    print(
        f"\nkubernetes API faults: {len(report.submitted)} workloads, {report.faulted_requests} requests "
        f"failed or delayed; AstraGo answered {report.api_answers_during_fault} during the faults, slowest "
        f"{report.slowest_api_answer_s:.2f} s; all finished {report.recovery_s:.1f} s after the API came back"
    )
    assert report.server_alive, report.server_log[-4000:]
    assert report.faulted_requests > 0  # the faults were met
    assert set(report.api_answers_during_fault) == {200, 201}  # the API kept answering, without errors
    assert report.final_status == dict.fromkeys(report.submitted, "SUCCEEDED"), report.server_log[-4000:]
    assert len(report.jobs_created) == len(report.submitted)
    assert set(report.jobs_created.values()) == {1}, report.jobs_created  # nothing started twice
