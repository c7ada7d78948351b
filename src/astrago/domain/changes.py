"""The change feed's rules: what a change names, and how a follower's cursor advances without losing a
change whose transaction commits after a later one (ids are allocated in order, commits are not)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class ChangeKind(StrEnum):
    WORKLOAD = "workload"  # a workload's status, reason, queue position or placement changed
    NODE = "node"  # a node or one of its GPUs changed (inventory, health, schedulability)


# A gap older than this is a rolled-back transaction, not a late commit: stop waiting for it.
GAP_PATIENCE_S = 10.0


@dataclass
class FeedCursor:
    """Where a follower stands: the highest id delivered, plus the ids below it not seen yet (gaps).

    On PostgreSQL two writers can take ids 10 and 11 and commit 11 first; a follower that only asked for
    `id > last` would never see 10. Gaps are asked for again until they arrive or GAP_PATIENCE_S passes."""

    last: int
    gaps: dict[int, float] = field(default_factory=dict)  # id -> when it was first missed (monotonic)

    def advance(self, delivered: Iterable[int], now: float) -> None:
        ids = sorted(set(delivered))
        for change_id in ids:
            self.gaps.pop(change_id, None)
        highest = ids[-1] if ids else self.last
        if highest > self.last:
            present = set(ids)
            for missing in range(self.last + 1, highest):
                if missing not in present:
                    self.gaps[missing] = now
            self.last = highest
        for change_id, since in list(self.gaps.items()):
            if now - since > GAP_PATIENCE_S:
                del self.gaps[change_id]
