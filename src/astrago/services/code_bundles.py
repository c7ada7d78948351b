"""Code bundles: the directory a user ran `astrago run` in, packed by the CLI, uploaded once, and unpacked
as the workload's working directory by the backend.

The upload is streamed to disk with a size limit (never held in memory), then checked as an archive: a
gzip'd tar of regular files and directories only, no absolute paths, no `..`, no links, no device files,
at most `MAX_FILES` entries. A bundle belongs to its uploader; only they can run workloads from it."""

from __future__ import annotations

import hashlib
import re
import tarfile
import time
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

from astrago.auth import code_credentials
from astrago.auth.principal import Principal
from astrago.domain import TERMINAL_STATUSES
from astrago.domain.enums import WorkloadStatus
from astrago.services.context import ServiceContext
from astrago.services.errors import Forbidden, InvalidInput, NotFound, ServiceError
from astrago.services.schemas import CodeBundleOut
from astrago.store.code_bundles import StoredBundle, code_bundle_store
from astrago.store.ids import new_id
from astrago.store.repositories import WorkloadRepository

MAX_FILES = 20_000
BUNDLE_ID_PATTERN = r"^[a-z0-9]{6,32}$"


class PayloadTooLarge(ServiceError):
    status = 413
    title = "Payload too large"
    audit_result = "invalid"


class CodeBundleService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = code_bundle_store(ctx.settings.data_dir)

    @property
    def max_bytes(self) -> int:
        return self.ctx.settings.code_bundle_max_mib * 1024 * 1024

    async def upload(self, principal: Principal, chunks: AsyncIterator[bytes]) -> CodeBundleOut:
        bundle_id = new_id()
        temporary = self.store.temporary_path(bundle_id)
        digest = hashlib.sha256()
        size = 0
        try:
            with temporary.open("wb") as handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PayloadTooLarge(
                            f"the code bundle is larger than this server's limit of "
                            f"{self.ctx.settings.code_bundle_max_mib} MiB; leave data and build output out "
                            "of it with .astragoignore, or run with --no-code"
                        )
                    digest.update(chunk)
                    handle.write(chunk)
            files = _checked_archive(temporary)
            stored = StoredBundle(bundle_id, principal.user_id, size, digest.hexdigest(), files, time.time())
            async with self.ctx.mutation(principal, "code.upload", bundle_id) as mutation:
                mutation.detail = f"{size} bytes, {files} files"
                self.store.commit(temporary, stored)
        finally:
            temporary.unlink(missing_ok=True)
        await self._expire()
        return _out(stored)

    async def _expire(self) -> None:
        """Delete bundles past their retention that no unfinished workload refers to (an ended workload
        has its own unpacked copy; a queued one still needs its bundle, however old)."""
        cutoff = time.time() - self.ctx.settings.code_bundle_retention_days * 86400
        expired = self.store.older_than(cutoff)
        if not expired:
            return
        async with self.ctx.read() as session:
            in_use = await WorkloadRepository(session).code_bundles_of_unfinished()
        for bundle_id in expired:
            if bundle_id not in in_use:
                self.store.delete(bundle_id)

    def archive(self, principal: Principal, bundle_id: str) -> Path:
        """The archive of a bundle `principal` uploaded (an admin may read anyone's)."""
        return self._archive_file(self.owned(principal, bundle_id).id)

    async def archive_for_workload(self, bundle_id: str, credential: str) -> Path:
        """The archive, for a pod showing the download credential its workload was launched with: valid
        for this bundle only, before its expiry, and while that workload, which runs this bundle, has
        not ended."""
        key = code_credentials.server_key(self.ctx.settings)
        try:
            granted = code_credentials.verify(key, bundle_id, credential)
        except code_credentials.InvalidCodeCredential as exc:
            raise Forbidden(str(exc)) from exc
        async with self.ctx.read() as session:
            workload = await WorkloadRepository(session).get(granted.workload_id)
        if workload is None or workload.spec.get("code") != bundle_id:
            raise Forbidden("the code download credential is not valid for this code bundle")
        if WorkloadStatus(workload.status) in TERMINAL_STATUSES:
            raise Forbidden(f"workload {workload.name!r} has ended; its code download credential with it")
        return self._archive_file(bundle_id)

    def _archive_file(self, bundle_id: str) -> Path:
        path = self.store.archive_path(bundle_id)
        if not path.is_file():
            raise NotFound(f"code bundle {bundle_id!r} is gone; submit the workload again")
        return path

    def owned(self, principal: Principal, bundle_id: str) -> StoredBundle:
        """The bundle, if `principal` uploaded it (an admin may use anyone's)."""
        found = self.store.get(bundle_id) if re.match(BUNDLE_ID_PATTERN, bundle_id) else None
        if found is None or (found.owner_id != principal.user_id and not principal.is_admin):
            raise NotFound(f"code bundle {bundle_id!r} does not exist or is not yours")
        return found


def _out(bundle: StoredBundle) -> CodeBundleOut:
    return CodeBundleOut(id=bundle.id, size_bytes=bundle.size_bytes, sha256=bundle.sha256, files=bundle.files)


def _checked_archive(path: Path) -> int:
    """The number of entries; InvalidInput for anything that is not a plain, relative tree."""
    try:
        with tarfile.open(path, "r:gz") as archive:
            count = 0
            for member in archive:
                count += 1
                if count > MAX_FILES:
                    raise InvalidInput(f"the code bundle holds more than {MAX_FILES} files")
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts:
                    raise InvalidInput(f"the code bundle holds a path outside its root: {member.name!r}")
                if not (member.isfile() or member.isdir()):
                    raise InvalidInput(
                        f"the code bundle may hold files and directories only, not {member.name!r}"
                    )
            return count
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidInput(f"the code bundle is not a gzip'd tar archive: {exc}") from exc
