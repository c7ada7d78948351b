"""Code bundles on disk: `<data dir>/code/<id>.tar.gz` and its `<id>.json` (owner, size, digest).

Files, not database rows: a bundle is a blob written once and read by the backend that unpacks it, and the
metadata lives beside it so that the two can never disagree. Writes go to a temporary name first and are
renamed into place, so a crash never leaves half a bundle under a real id."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

BUNDLE_SUFFIX = ".tar.gz"


@dataclass(frozen=True, slots=True)
class StoredBundle:
    id: str
    owner_id: str
    size_bytes: int
    sha256: str
    files: int
    created_at: float


class CodeBundleStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def archive_path(self, bundle_id: str) -> Path:
        return self.root / f"{bundle_id}{BUNDLE_SUFFIX}"

    def temporary_path(self, bundle_id: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.root / f".{bundle_id}.partial"

    def commit(self, temporary: Path, bundle: StoredBundle) -> None:
        meta = self.root / f".{bundle.id}.json.partial"
        meta.write_text(json.dumps(asdict(bundle)))
        os.replace(temporary, self.archive_path(bundle.id))
        os.replace(meta, self.root / f"{bundle.id}.json")

    def older_than(self, cutoff: float) -> list[str]:
        """Ids of the bundles stored before `cutoff` (a Unix time)."""
        if not self.root.is_dir():
            return []
        return [
            path.name.removesuffix(".json")
            for path in self.root.glob("*.json")
            if path.stat().st_mtime < cutoff
        ]

    def delete(self, bundle_id: str) -> None:
        self.archive_path(bundle_id).unlink(missing_ok=True)
        (self.root / f"{bundle_id}.json").unlink(missing_ok=True)

    def get(self, bundle_id: str) -> StoredBundle | None:
        try:
            data = json.loads((self.root / f"{bundle_id}.json").read_text())
        except (OSError, ValueError):
            return None
        return StoredBundle(**data)


def code_bundle_store(data_dir: Path) -> CodeBundleStore:
    return CodeBundleStore(data_dir / "code")
