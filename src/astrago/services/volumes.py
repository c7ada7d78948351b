"""Volumes: create, list, describe, rename, resize, delete; browse and read their files; mount them.

Usage is measured on disk (never trusted from a counter): workloads write into mounted volumes too.
Other workspaces' volumes answer 404, like volumes that do not exist, so names do not leak."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from astrago.auth.principal import Principal
from astrago.backends.local.sandbox import bind_target_problem
from astrago.domain.enums import WorkloadStatus, WorkspaceRole
from astrago.domain.status import TERMINAL_STATUSES
from astrago.domain.volumes import (
    VolumeInputError,
    VolumeKind,
    env_name,
    format_bytes,
    local_mount_target_problem,
    normalise_name,
    parse_mount,
    parse_size_bytes,
    relative_path,
    unique_slug,
)
from astrago.services.context import ServiceContext
from astrago.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from astrago.services.volume_schemas import (
    DirectoryOut,
    FileEntryOut,
    UploadOut,
    VolumeCreate,
    VolumeOut,
    VolumeUpdate,
    VolumeUserOut,
)
from astrago.storage.files import PathRefused, Usage, VolumeFiles
from astrago.store.ids import new_id
from astrago.store.models import Upload, Volume, Workspace
from astrago.store.repositories import (
    QuotaRepository,
    UploadRepository,
    UserRepository,
    VolumeRepository,
    WorkspaceRepository,
)

STORAGE_RESOURCE = "storage"
USAGE_CACHE_S = 5.0  # uploads invalidate on completion; this bounds staleness from workloads' writes
UNFINISHED = [status for status in WorkloadStatus if status not in TERMINAL_STATUSES]


@dataclass
class VolumeDisk:
    """The volumes' files plus a short cache of measured usage (walking a big volume takes a while) and
    one lock per workspace, so that two uploads cannot both pass a storage check meant for one."""

    files: VolumeFiles
    _usage: dict[str, tuple[Usage, float]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def usage(self, volume: Volume) -> Usage:
        cached = self._usage.get(volume.id)
        if cached and time.monotonic() - cached[1] < USAGE_CACHE_S:
            return cached[0]
        measured = await asyncio.to_thread(self.files.usage, volume.workspace_id, volume.id)
        self._usage[volume.id] = (measured, time.monotonic())
        return measured

    def forget_usage(self, volume_id: str) -> None:
        self._usage.pop(volume_id, None)

    def add_file(self, volume_id: str, size: int, replaced: int | None) -> None:
        """A file just put in place: counted into the cached measure until it is measured again (so a
        folder of many files does not walk the volume once per file)."""
        cached = self._usage.get(volume_id)
        if cached is None:
            return
        usage, measured_at = cached
        grown = Usage(bytes=usage.bytes + size - (replaced or 0), files=usage.files + (replaced is None))
        self._usage[volume_id] = (grown, measured_at)

    def storage_lock(self, workspace_id: str) -> asyncio.Lock:
        return self._locks.setdefault(workspace_id, asyncio.Lock())


def _refuse(exc: VolumeInputError | PathRefused) -> InvalidInput:
    return InvalidInput(str(exc))


async def find_workspace(
    session: AsyncSession, principal: Principal, name: str, needed: WorkspaceRole
) -> Workspace:
    """The workspace, 404 when it does not exist or the caller is not in it, 403 for too weak a role."""
    workspace = await WorkspaceRepository(session).by_name(name)
    if workspace is None or not (principal.is_admin or principal.role_in(workspace.id)):
        raise NotFound(f"workspace {name!r} does not exist or you are not a member of it")
    if not principal.can(workspace.id, needed):
        raise Forbidden(f"you need the {needed.value} role in workspace {name!r} for this")
    return workspace


async def find_volume(
    session: AsyncSession, principal: Principal, workspace_name: str, name: str, needed: WorkspaceRole
) -> tuple[Workspace, Volume]:
    workspace = await find_workspace(session, principal, workspace_name, needed)
    volume = await VolumeRepository(session).by_name(workspace.id, name)
    if volume is None:
        raise NotFound(f"volume {name!r} does not exist in workspace {workspace_name!r}")
    return workspace, volume


async def volume_users(session: AsyncSession, volume: Volume) -> list[VolumeUserOut]:
    """Unfinished workloads of its workspace that mount it (pending ones will mount it later)."""
    workloads = await VolumeRepository(session).unfinished_workloads(
        volume.workspace_id, [status.value for status in UNFINISHED]
    )
    users = []
    for workload in workloads:
        for mount in workload.spec.get("volume_mounts") or ():
            if mount["volume_id"] == volume.id:
                users.append(
                    VolumeUserOut(
                        workload_id=workload.id,
                        workload_name=workload.name,
                        status=WorkloadStatus(workload.status),
                        mount_path=mount["mount_path"],
                        read_only=mount["read_only"],
                    )
                )
    return users


async def storage_used(session: AsyncSession, disk: VolumeDisk, workspace_id: str) -> tuple[int, int]:
    """(bytes measured in the workspace's volumes, bytes declared by their unfinished uploads)."""
    volumes = await VolumeRepository(session).in_workspace(workspace_id)
    used = sum([(await disk.usage(volume)).bytes for volume in volumes])
    uploads = await UploadRepository(session).unfinished_in([v.id for v in volumes])
    return used, sum(upload.length for upload in uploads)


def upload_out(upload: Upload, offset: int, creator: str | None) -> UploadOut:
    return UploadOut(
        id=upload.id,
        path=upload.path,
        offset=offset,
        length=upload.length,
        created_by=creator,
        created_at=upload.created_at,
        expires_at=upload.expires_at,
    )


def _size_limit(value: int | str) -> int | None:
    if str(value).strip() == "-1":
        return None
    try:
        size = parse_size_bytes(value)
    except VolumeInputError as exc:
        raise _refuse(exc) from exc
    if size <= 0:
        raise InvalidInput("a volume's size limit must be positive (or -1 for none of its own)")
    return size


class VolumeService:
    def __init__(self, ctx: ServiceContext, disk: VolumeDisk) -> None:
        self.ctx = ctx
        self.disk = disk

    async def create(self, principal: Principal, workspace_name: str, request: VolumeCreate) -> VolumeOut:
        target = f"{workspace_name}/{request.name}"
        async with self.ctx.mutation(principal, "volume.create", target, workspace_name) as mutation:
            session = mutation.session
            workspace = await find_workspace(session, principal, workspace_name, WorkspaceRole.MEMBER)
            try:
                name = normalise_name(request.name)
            except VolumeInputError as exc:
                raise _refuse(exc) from exc
            size_limit = _size_limit(request.size) if request.size is not None else None
            await self._check_within_workspace_limit(session, workspace, size_limit)
            repo = VolumeRepository(session)
            existing = await repo.by_name(workspace.id, name)
            if existing is not None and existing.name == name:
                raise Conflict(f"volume {name!r} already exists in workspace {workspace_name!r}")
            volume_id = new_id()
            volume = Volume(
                id=volume_id,
                workspace_id=workspace.id,
                name=name,
                slug=unique_slug(name, volume_id, await repo.slugs(workspace.id)),
                kind=request.kind.value,
                size_limit=size_limit,
                description=request.description,
                created_by=principal.user_id,
                created_at=datetime.now(UTC),
            )
            repo.add(volume)
            await session.flush()
            await asyncio.to_thread(self.disk.files.create_volume_dir, workspace.id, volume_id)
            mutation.target = f"{workspace_name}/{name} ({volume_id})"
            mutation.detail = f"kind={volume.kind}, size_limit={size_limit}"
            volume.workspace = workspace
            return await self._out(session, volume, principal.username, detailed=False)

    async def list(self, principal: Principal, workspace_name: str) -> Sequence[VolumeOut]:
        async with self.ctx.read() as session:
            workspace = await find_workspace(session, principal, workspace_name, WorkspaceRole.VIEWER)
            volumes = await VolumeRepository(session).in_workspace(workspace.id)
            return [await self._out(session, volume, None, detailed=False) for volume in volumes]

    async def get(self, principal: Principal, workspace_name: str, name: str) -> VolumeOut:
        async with self.ctx.read() as session:
            _, volume = await find_volume(session, principal, workspace_name, name, WorkspaceRole.VIEWER)
            return await self._out(session, volume, None, detailed=True)

    async def update(
        self, principal: Principal, workspace_name: str, name: str, request: VolumeUpdate
    ) -> VolumeOut:
        async with self.ctx.mutation(
            principal, "volume.update", f"{workspace_name}/{name}", workspace_name
        ) as mutation:
            session = mutation.session
            workspace, volume = await find_volume(
                session, principal, workspace_name, name, WorkspaceRole.MEMBER
            )
            changes = []
            if request.name is not None:
                try:
                    new_name = normalise_name(request.name)
                except VolumeInputError as exc:
                    raise _refuse(exc) from exc
                if new_name != volume.name:
                    await self._rename(session, workspace, volume, new_name)
                    changes.append(f"name={new_name!r}, slug={volume.slug}")
            if request.description is not None:
                volume.description = request.description
                changes.append("description")
            if request.size is not None:
                size_limit = _size_limit(request.size)
                await self._check_within_workspace_limit(session, workspace, size_limit)
                used = (await self.disk.usage(volume)).bytes
                if size_limit is not None and size_limit < used:
                    raise Conflict(
                        f"volume {volume.name!r} already holds {format_bytes(used)}; a limit of "
                        f"{format_bytes(size_limit)} would be below that"
                    )
                volume.size_limit = size_limit
                changes.append(f"size_limit={size_limit}")
            if not changes:
                raise InvalidInput("nothing to change: give a new name, description or size")
            await session.flush()
            mutation.detail = ", ".join(changes)
            return await self._out(session, volume, None, detailed=False)

    async def delete(self, principal: Principal, workspace_name: str, name: str) -> None:
        async with self.ctx.mutation(
            principal, "volume.delete", f"{workspace_name}/{name}", workspace_name
        ) as mutation:
            session = mutation.session
            workspace, volume = await find_volume(
                session, principal, workspace_name, name, WorkspaceRole.MEMBER
            )
            if volume.created_by != principal.user_id and not principal.can(
                workspace.id, WorkspaceRole.MANAGER
            ):
                raise Forbidden("only its creator or a manager of the workspace can delete this volume")
            users = await volume_users(session, volume)
            if users:
                named = ", ".join(f"{u.workload_name} ({u.workload_id}, {u.status.value})" for u in users)
                raise Conflict(
                    f"volume {volume.name!r} is mounted by unfinished workloads: {named}; "
                    "cancel them or wait for them to end, then delete it"
                )
            uploads = await UploadRepository(session).unfinished_in([volume.id])
            usage = await self.disk.usage(volume)
            mutation.detail = (
                f"held {usage.bytes} bytes in {usage.files} files; {len(uploads)} unfinished uploads"
            )
            await VolumeRepository(session).delete(volume)
            await session.flush()
            trashed = await asyncio.to_thread(self.disk.files.trash_volume, workspace.id, volume.id)
        # Committed: the files go for good (a crash here leaves them in the trash, emptied at start).
        self.disk.forget_usage(volume.id)
        for upload in uploads:
            await asyncio.to_thread(self.disk.files.remove_part, upload.id)
        if trashed is not None:
            await asyncio.to_thread(self.disk.files.empty_trash)

    # -- files -------------------------------------------------------------------------------------------

    async def list_dir(self, principal: Principal, workspace_name: str, name: str, path: str) -> DirectoryOut:
        async with self.ctx.read() as session:
            _, volume = await find_volume(session, principal, workspace_name, name, WorkspaceRole.VIEWER)
        try:
            clean = relative_path(path, allow_root=True)
            entries = await asyncio.to_thread(self.disk.files.list_dir, volume.workspace_id, volume.id, clean)
        except (VolumeInputError, PathRefused) as exc:
            raise NotFound(str(exc)) if isinstance(exc, PathRefused) else _refuse(exc) from exc
        return DirectoryOut(
            volume=volume.name,
            path="/" + clean,
            entries=[
                FileEntryOut(
                    name=e.name,
                    type=e.type,
                    size=e.size,
                    modified=datetime.fromtimestamp(e.modified, UTC),
                )
                for e in entries
            ],
        )

    async def readable(
        self, principal: Principal, workspace_name: str, name: str, path: str
    ) -> tuple[Volume, str, str]:
        """(volume, normalised path, file | dir) of something a viewer may download."""
        async with self.ctx.read() as session:
            _, volume = await find_volume(session, principal, workspace_name, name, WorkspaceRole.VIEWER)
        try:
            clean = relative_path(path, allow_root=True)
            kind = await asyncio.to_thread(self.disk.files.entry_type, volume.workspace_id, volume.id, clean)
        except VolumeInputError as exc:
            raise _refuse(exc) from exc
        except PathRefused as exc:
            raise NotFound(str(exc)) from exc
        if kind not in ("file", "dir"):
            raise InvalidInput(f"{path!r} is a {kind}; only files and folders can be downloaded")
        return volume, clean, kind

    def open_file(self, volume: Volume, path: str) -> tuple[int, os.stat_result]:
        try:
            return self.disk.files.open_file(volume.workspace_id, volume.id, path)
        except PathRefused as exc:
            raise NotFound(str(exc)) from exc

    # -- helpers -----------------------------------------------------------------------------------------

    async def _rename(
        self, session: AsyncSession, workspace: Workspace, volume: Volume, new_name: str
    ) -> None:
        repo = VolumeRepository(session)
        clash = await repo.by_name(workspace.id, new_name)
        if clash is not None and clash.id != volume.id and clash.name == new_name:
            raise Conflict(f"volume {new_name!r} already exists in workspace {workspace.name!r}")
        users = await volume_users(session, volume)
        if users:
            named = ", ".join(f"{u.workload_name} ({u.workload_id})" for u in users)
            raise Conflict(
                f"volume {volume.name!r} is mounted by unfinished workloads ({named}), whose "
                f"{env_name(volume.slug)} would no longer match its name; rename it once they end"
            )
        volume.name = new_name
        volume.slug = unique_slug(new_name, volume.id, await repo.slugs(workspace.id) - {volume.slug})

    async def _check_within_workspace_limit(
        self, session: AsyncSession, workspace: Workspace, size_limit: int | None
    ) -> None:
        if size_limit is None:
            return
        for entry in await QuotaRepository(session).for_workspace(workspace.id):
            if entry.resource == STORAGE_RESOURCE and entry.limit is not None and size_limit > entry.limit:
                raise InvalidInput(
                    f"workspace {workspace.name!r} has a storage limit of {format_bytes(entry.limit)}; a "
                    f"volume of {format_bytes(size_limit)} could never be filled"
                )

    async def _out(
        self, session: AsyncSession, volume: Volume, creator: str | None, detailed: bool
    ) -> VolumeOut:
        usage = await self.disk.usage(volume)
        uploads = await UploadRepository(session).unfinished_in([volume.id])
        out = VolumeOut(
            id=volume.id,
            workspace=volume.workspace.name,
            name=volume.name,
            slug=volume.slug,
            env_var=env_name(volume.slug),
            kind=VolumeKind(volume.kind),
            size_limit=volume.size_limit,
            description=volume.description,
            used_bytes=usage.bytes,
            used_files=usage.files,
            reserved_bytes=sum(u.length for u in uploads),
            created_by=creator or await _username(session, volume.created_by),
            created_at=volume.created_at,
        )
        if detailed:
            out.mounted_by = await volume_users(session, volume)
            out.uploads = [
                upload_out(u, await self._part_size(u.id), await _username(session, u.created_by))
                for u in uploads
            ]
        return out

    async def _part_size(self, upload_id: str) -> int:
        size = await asyncio.to_thread(self.disk.files.part_size, upload_id)
        return size or 0


async def _username(session: AsyncSession, user_id: str | None) -> str | None:
    if user_id is None:
        return None
    user = await UserRepository(session).get(user_id)
    return user.username if user else None


# -- mounts ------------------------------------------------------------------------------------------------


def _check_local_target(path: str) -> None:
    """Where a sandboxed local workload may have a volume: see `bind_target_problem` and
    `local_mount_target_problem`. (The local backend runs on this machine, so its folders are these.)"""
    problem = local_mount_target_problem(path) or bind_target_problem(Path(path))
    if problem is not None:
        raise InvalidInput(
            f"a local workload cannot have a volume at {path}: {problem}. Mount it at a new top-level "
            "folder (e.g. /data), at an existing empty folder, under /tmp, or at a path relative to the "
            "working directory"
        )


async def resolve_mounts(
    session: AsyncSession, workspace: Workspace, texts: Sequence[str], backend: str, bind_mounts: bool
) -> list[dict[str, Any]]:
    """What `--volume NAME:/path[:ro]` means for this workspace and backend, as stored in the spec.

    Refused at submission rather than at start: a volume that does not exist, one mounted twice, two
    volumes at one path, and what the backend cannot honour (an absolute or read-only mount on a local
    backend without a sandbox, a path a local sandbox cannot or should not mount at; a relative path on
    Kubernetes)."""
    repo = VolumeRepository(session)
    mounts: list[dict[str, Any]] = []
    for position, text in enumerate(texts):
        try:
            request = parse_mount(text)
        except VolumeInputError as exc:
            raise InvalidInput(f"volumes.{position}: {exc}") from exc
        volume = await repo.by_name(workspace.id, request.volume)
        if volume is None:
            raise InvalidInput(
                f"volume {request.volume!r} does not exist in workspace {workspace.name!r} "
                f"(create it with `astrago volume create {request.volume!r} -w {workspace.name}`)"
            )
        absolute = request.mount_path.startswith("/")
        if backend == "kubernetes" and not absolute:
            raise InvalidInput(f"mount path {request.mount_path!r} must be absolute, e.g. /data")
        if backend == "local" and not bind_mounts and (absolute or request.read_only):
            raise InvalidInput(
                f"this server runs workloads as local processes without a sandbox (single-user mode), so "
                f"it cannot mount volume {volume.name!r} at {request.mount_path!r}"
                + (" read-only" if request.read_only else "")
                + f". Use a path relative to the working directory (e.g. {volume.name}:data, a link to "
                f"the volume) or read the volume's location from ${env_name(volume.slug)}, which every "
                "workload that mounts it gets"
            )
        if backend == "local" and bind_mounts and absolute:
            _check_local_target(request.mount_path)
        if any(m["volume_id"] == volume.id for m in mounts):
            raise InvalidInput(f"volume {volume.name!r} is mounted twice; mount it once")
        if any(m["mount_path"] == request.mount_path for m in mounts):
            raise InvalidInput(f"two volumes are mounted at {request.mount_path}")
        mounts.append(
            {
                "volume_id": volume.id,
                "name": volume.name,
                "slug": volume.slug,
                "mount_path": request.mount_path,
                "read_only": request.read_only,
            }
        )
    return mounts
