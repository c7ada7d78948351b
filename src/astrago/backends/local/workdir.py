"""A workload's working directory from its code bundle: an unpacked snapshot, made once.

A snapshot, not the user's live directory: the job sees the code as it was when submitted (editing or
`git checkout` while it queues or runs changes nothing under it), it can write next to its code without
touching the user's files, and the same bundle works for a server on another machine. Unpacking goes to a
temporary directory renamed into place, so a crash mid-way never leaves a half tree that a restart would
take for complete."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

from astrago.backends.base import BackendError
from astrago.store.code_bundles import CodeBundleStore


def unpack_code_bundle(store: CodeBundleStore, bundle_id: str, target: Path) -> None:
    if target.is_dir():
        return  # unpacked already (a restarted server launching the same workload again)
    archive = store.archive_path(bundle_id)
    if not archive.is_file():
        raise BackendError(
            f"the code bundle {bundle_id} is gone from {archive.parent}; submit the workload again"
        )
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:gz") as bundle:
            # The "data" filter refuses links out of the tree, absolute paths and device files again here.
            bundle.extractall(partial, filter="data")
        os.replace(partial, target)
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise BackendError(f"could not unpack the code bundle {bundle_id}: {exc}") from exc
