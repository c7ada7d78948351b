from __future__ import annotations

import pytest

from astrago.domain import InvalidTransition, WorkloadStatus, can_transition, check_transition
from astrago.domain.status import TERMINAL_STATUSES

S = WorkloadStatus


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.PENDING, S.ADMITTED),
        (S.ADMITTED, S.STARTING),
        (S.STARTING, S.RUNNING),
        (S.RUNNING, S.SUCCEEDED),
        (S.RUNNING, S.FAILED),
        (S.RUNNING, S.CANCELLED),
        (S.RUNNING, S.PREEMPTED),
        (S.PREEMPTED, S.PENDING),
        (S.PENDING, S.CANCELLED),
    ],
)
def test_documented_transitions_are_allowed(current: S, target: S) -> None:
    assert can_transition(current, target)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES))
def test_nothing_leaves_a_terminal_status(terminal: S) -> None:
    for target in S:
        assert not can_transition(terminal, target)


def test_invalid_transition_names_both_states() -> None:
    with pytest.raises(InvalidTransition, match="PENDING cannot become RUNNING"):
        check_transition(S.PENDING, S.RUNNING)
