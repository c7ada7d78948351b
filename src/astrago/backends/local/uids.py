"""One unprivileged uid (and gid of the same number) per workspace, for sandboxed workloads of a root server.

Per workspace, not per user: the workspace is the platform's unit of sharing (its members share its
quota, workloads and volumes), so files one member's job writes in the workspace's volumes stay
writable by another member's job, while every other workspace's jobs are a different uid and cannot
touch them. The mapping is durable (`<data dir>/runs/workspace-uids.json`, written atomically), so a
workspace keeps its uid across restarts; uids are handed out from `sandbox_uid_base` upwards, skipping any
that the host's account database already knows, and never reused."""

from __future__ import annotations

import json
import pwd
from pathlib import Path

from astrago.backends.base import BackendError
from astrago.backends.local.runner import write_json_atomic
from astrago.backends.local.sandbox import SandboxUser

UID_SPAN = 2**20  # how many workspaces one base can serve


class WorkspaceUids:
    """Not thread-safe: the local backend allocates under its mutation lock, one server per data dir."""

    def __init__(self, path: Path, base: int) -> None:
        self._path = path
        self._base = base
        self._known: dict[str, int] | None = None

    def user_for(self, workspace: str) -> SandboxUser:
        known = self._load()
        if workspace not in known:
            known[workspace] = self._next_free(known)
            write_json_atomic(self._path, {"base": self._base, "workspaces": known})
        uid = known[workspace]
        return SandboxUser(uid=uid, gid=uid)

    def _load(self) -> dict[str, int]:
        if self._known is None:
            try:
                data = json.loads(self._path.read_bytes())
                self._known = {str(name): int(uid) for name, uid in data["workspaces"].items()}
            except FileNotFoundError:
                self._known = {}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise BackendError(
                    f"the workspace uid table {self._path} cannot be read ({exc}); restore it from a backup: "
                    "handing out uids afresh could give one workspace's files to another"
                ) from exc
        return self._known

    def _next_free(self, known: dict[str, int]) -> int:
        taken = set(known.values())
        candidate = max(taken, default=self._base - 1) + 1
        while candidate < self._base + UID_SPAN:
            if candidate not in taken and not _account_exists(candidate):
                return candidate
            candidate += 1
        raise BackendError(f"no free workspace uid left in {self._base}..{self._base + UID_SPAN - 1}")


def _account_exists(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True
