"""How long the workload controller rests after a cycle: three times the cycle (so a continuous burst
leaves the API at least three quarters of the event loop), at least a twentieth of a second, and never
more than a second, because a cycle's wall time grows with the machine's load and the rest delays every
observation and launch."""

from __future__ import annotations

import pytest

from astrago.controllers.workloads import MAX_REST_S, MIN_REST_S, WorkloadController


@pytest.mark.parametrize(
    ("cycle_s", "rest_s"),
    [(0.0, MIN_REST_S), (0.01, MIN_REST_S), (0.1, 0.3), (0.2, 0.6), (1.0, MAX_REST_S), (30.0, MAX_REST_S)],
)
def test_the_rest_is_three_cycles_within_bounds(cycle_s: float, rest_s: float) -> None:
    assert WorkloadController._rest_after(cycle_s) == pytest.approx(rest_s)
