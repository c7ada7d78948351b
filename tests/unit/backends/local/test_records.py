from __future__ import annotations

import time
from pathlib import Path

import pytest

from astrago.backends.base import BackendError
from astrago.backends.local.process import ProcessIdentity
from astrago.backends.local.records import (
    Outcome,
    RecordStore,
    ReplicaRecord,
    UnreadableRecord,
    check_workload_id,
)
from astrago.domain.enums import ReplicaState


def intent(workload_id: str = "wl-1", index: int = 0) -> ReplicaRecord:
    return ReplicaRecord(
        workload_id=workload_id,
        replica_index=index,
        replicas=1,
        node="box",
        launch_token="t" * 32,
        argv=("python", "train.py"),
        working_dir="/tmp",
        log_path="/tmp/0.log",
        visible_devices=("0",),
        simulated_gpus=True,
        master_port=None,
        max_runtime_s=None,
        intent_at=time.time(),
    )


def test_a_record_survives_every_stage(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    record = intent()
    store.save(record)
    record = record.with_runner(ProcessIdentity(pid=42, start_ticks=7, boot_id="b"), started_at=1.0)
    store.save(record)
    record = record.with_stop("cancelled by alice", 3.0)
    store.save(record)
    record = record.with_outcome(
        Outcome(state=ReplicaState.STOPPED, reason="cancelled by alice", finished_at=2.0)
    )
    store.save(record)

    assert store.load_all() == [record]
    assert record.is_finished
    assert list(tmp_path.rglob("*.tmp")) == []  # atomic writes leave no temporary files behind


def test_records_load_in_a_stable_order(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    for workload_id, index in [("b", 0), ("a", 1), ("a", 0)]:
        store.save(intent(workload_id, index))
    keys = [loaded.key for loaded in store.load_all() if isinstance(loaded, ReplicaRecord)]
    assert keys == [("a", 0), ("a", 1), ("b", 0)]


def test_an_unreadable_record_is_reported_not_skipped(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    store.save(intent())
    store.record_path("wl-1", 0).write_text("{not json")
    store.workload_dir("wl-2").mkdir()
    store.record_path("wl-2", 3).write_text(intent("wl-2", 0).model_dump_json())

    loaded = store.load_all()

    assert [type(entry) for entry in loaded] == [UnreadableRecord, UnreadableRecord]
    assert isinstance(loaded[1], UnreadableRecord)
    assert loaded[1].error == "record is in the wrong file"


def test_delete_workload_removes_its_run_files_only(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    store.save(intent("wl-1"))
    store.save(intent("wl-2"))
    store.delete_workload("wl-1")
    assert [entry.key for entry in store.load_all() if isinstance(entry, ReplicaRecord)] == [("wl-2", 0)]


@pytest.mark.parametrize("workload_id", ["../etc", "a/b", "", ".hidden", "x" * 129, "a b"])
def test_workload_ids_cannot_escape_the_runs_dir(workload_id: str) -> None:
    with pytest.raises(BackendError, match="cannot name a run directory"):
        check_workload_id(workload_id)
