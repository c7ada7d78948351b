"""The workload status machine (docs/architecture.md).

PENDING → ADMITTED → STARTING → RUNNING → SUCCEEDED | FAILED | CANCELLED, and PREEMPTED → PENDING.
Cancellation and failure may happen from any live state; a preempted workload goes back to the queue."""

from astrago.domain.enums import WorkloadStatus as S

TERMINAL_STATUSES: frozenset[S] = frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED})
LIVE_STATUSES: frozenset[S] = frozenset({S.ADMITTED, S.STARTING, S.RUNNING})

_ALLOWED: dict[S, frozenset[S]] = {
    S.PENDING: frozenset({S.ADMITTED, S.CANCELLED, S.FAILED}),
    S.ADMITTED: frozenset({S.STARTING, S.RUNNING, S.SUCCEEDED, S.FAILED, S.CANCELLED, S.PREEMPTED}),
    S.STARTING: frozenset({S.RUNNING, S.SUCCEEDED, S.FAILED, S.CANCELLED, S.PREEMPTED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.PREEMPTED}),
    S.PREEMPTED: frozenset({S.PENDING, S.CANCELLED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}


class InvalidTransition(ValueError):
    def __init__(self, current: S, target: S) -> None:
        super().__init__(f"a workload in state {current} cannot become {target}")
        self.current = current
        self.target = target


def can_transition(current: S, target: S) -> bool:
    return target in _ALLOWED[current]


def check_transition(current: S, target: S) -> None:
    if not can_transition(current, target):
        raise InvalidTransition(current, target)
