"""`ps --watch` keeps what `ps` with the same flags would print, one event at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from astrago.cli.watch import WatchedList, WatchFilter
from astrago.domain.enums import WorkloadKind, WorkloadStatus
from astrago.services.schemas import WorkloadOut

LIVE = ["PENDING", "ADMITTED", "STARTING", "RUNNING", "PREEMPTED"]
T0 = datetime(2026, 12, 2, tzinfo=UTC)


def workload(
    workload_id: str, status: str = "PENDING", workspace: str = "team", minute: int = 0
) -> WorkloadOut:
    fields: dict[str, Any] = {
        "id": workload_id,
        "name": workload_id,
        "workspace": workspace,
        "kind": WorkloadKind.JOB,
        "status": WorkloadStatus(status),
        "reason": None,
        "pending_code": None,
        "queue_position": None,
        "priority": 0,
        "preemptible": False,
        "replicas": 1,
        "spec": {"resources": {"gpus": 1, "cpu_milli": 1000, "memory_mib": 1024}},
        "created_by": "ana",
        "created_at": T0 + timedelta(minutes=minute),
        "admitted_at": None,
        "started_at": None,
        "finished_at": None,
        "placements": [],
    }
    return WorkloadOut(**fields)


def test_a_job_that_finishes_is_shown_once_more_then_leaves_a_live_list() -> None:
    watched = WatchedList(WatchFilter("team", LIVE), limit=50)
    watched.replace_all([workload("a", "RUNNING")])

    assert watched.apply(workload("a", "SUCCEEDED"))  # its end is news
    assert [w.id for w in watched.newest()] == []
    assert not watched.apply(workload("a", "SUCCEEDED"))  # repeated after a reconnect: nothing new
    assert not watched.apply(workload("a", "RUNNING"))  # sent before the end, delivered after: stale


def test_an_event_older_than_the_list_does_not_bring_a_finished_job_back() -> None:
    watched = WatchedList(WatchFilter(None, None), limit=50)
    watched.replace_all([workload("a", "FAILED")])
    assert not watched.apply(workload("a", "RUNNING"))
    assert [w.status for w in watched.newest()] == ["FAILED"]


def test_other_workspaces_and_states_are_not_shown() -> None:
    watched = WatchedList(WatchFilter("team", ["RUNNING"]), limit=50)
    watched.replace_all(
        [workload("a", "RUNNING"), workload("b", "PENDING"), workload("c", "RUNNING", "other")]
    )
    assert [w.id for w in watched.newest()] == ["a"]

    assert not watched.apply(workload("d", "RUNNING", "other"))
    assert not watched.apply(workload("b", "PENDING"))
    assert watched.apply(workload("b", "RUNNING"))
    assert sorted(w.id for w in watched.newest()) == ["a", "b"]


def test_the_newest_fill_the_limit() -> None:
    watched = WatchedList(WatchFilter(None, None), limit=2)
    watched.replace_all([workload("old", minute=0), workload("mid", minute=1)])
    watched.apply(workload("new", minute=2))
    assert [w.id for w in watched.newest()] == ["new", "mid"]
