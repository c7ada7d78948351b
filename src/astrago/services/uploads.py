"""Resumable uploads into volumes (the TUS 1.0 protocol's use cases; the router speaks the wire format).

Creation checks everything before a byte is written: the caller's role, the destination path, the
volume's size limit, the workspace's storage limit and the free disk space, each refusal with the
numbers. The declared length is reserved from then on, so concurrent uploads cannot overrun a limit
together. Bytes go to a part file outside the volume; the finished file is renamed into place, so a
volume never shows half a file. Unfinished uploads expire; a background task removes them (audited)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import errno
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from astrago.auth.principal import Principal
from astrago.domain.enums import WorkspaceRole
from astrago.domain.volumes import VolumeInputError, format_bytes, relative_path
from astrago.services.context import ServiceContext
from astrago.services.errors import (
    ChecksumMismatch,
    Conflict,
    Gone,
    InsufficientStorage,
    InvalidInput,
    Locked,
    NotFound,
    PayloadTooLarge,
    ServiceError,
)
from astrago.services.volumes import STORAGE_RESOURCE, VolumeDisk, find_volume, storage_used
from astrago.storage.files import PathRefused
from astrago.storage.parts import CHECKSUM_ALGORITHMS, OffsetMismatch, PartWriter
from astrago.store.ids import new_id
from astrago.store.models import Upload, Volume
from astrago.store.repositories import QuotaRepository, UploadRepository

log = logging.getLogger(__name__)
T = TypeVar("T")

WRITE_BATCH = 4 * 1024 * 1024  # bytes gathered before one write in a worker thread
LOCK_WAIT_S = 10.0  # a resumed PATCH may arrive before the server noticed the dropped one
DESTINATION_KEYS = ("path", "relativePath", "filename", "name")  # tuspy/CLI, Uppy, tus-js-client
ORPHAN_PART_AGE_S = 3600.0


@dataclass(frozen=True, slots=True)
class UploadState:
    id: str
    offset: int
    length: int
    metadata_header: str
    expires_at: datetime
    completed: bool


@dataclass
class _WriterSlot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    writer: asyncio.Task[int] | None = None  # the task streaming a body into the part file now
    waiting: int = 0


@dataclass(frozen=True, slots=True)
class Checksum:
    algorithm: str
    digest: bytes


def parse_metadata(header: str) -> dict[str, str]:
    """`Upload-Metadata: key base64value,key2 base64value2` (values may be absent)."""
    values: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, encoded = pair.partition(" ")
        try:
            values[key] = base64.b64decode(encoded.strip(), validate=True).decode() if encoded else ""
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidInput(f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text") from exc
    return values


def parse_checksum(header: str | None) -> Checksum | None:
    """`Upload-Checksum: sha256 <base64 digest>`."""
    if not header:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidInput(
            f"checksum algorithm {algorithm!r} is not supported; use one of {', '.join(CHECKSUM_ALGORITHMS)}"
        )
    try:
        return Checksum(algorithm, base64.b64decode(encoded.strip(), validate=True))
    except binascii.Error as exc:
        raise InvalidInput("Upload-Checksum digest is not base64") from exc


def _check_whole(whole: bytes, length: int, checksum: Checksum | None) -> None:
    if len(whole) != length:
        raise InvalidInput(f"the request carries {len(whole)} bytes but Upload-Length says {length}")
    if checksum is not None and CHECKSUM_ALGORITHMS[checksum.algorithm](whole).digest() != checksum.digest:
        raise ChecksumMismatch(f"the {checksum.algorithm} of the body does not match Upload-Checksum")


def destination_of(metadata: dict[str, str], base: str) -> str:
    """Where the finished file goes: metadata `path` (or what browsers' clients send) under `base`."""
    named = next((metadata[key] for key in DESTINATION_KEYS if metadata.get(key)), None)
    if named is None:
        raise InvalidInput("say where the file goes: Upload-Metadata needs `path` (or `filename`)")
    try:
        return relative_path(f"{base}/{named}")
    except VolumeInputError as exc:
        raise InvalidInput(str(exc)) from exc


def _state(upload: Upload, offset: int) -> UploadState:
    return UploadState(
        id=upload.id,
        offset=offset,
        length=upload.length,
        metadata_header=upload.metadata_header,
        expires_at=upload.expires_at,
        completed=upload.completed_at is not None,
    )


def _target(upload: Upload) -> str:
    return f"{upload.volume.workspace.name}/{upload.volume.name}:/{upload.path}"


class UploadService:
    def __init__(self, ctx: ServiceContext, disk: VolumeDisk) -> None:
        self.ctx = ctx
        self.disk = disk
        self._writing: dict[str, _WriterSlot] = {}

    @property
    def _ttl(self) -> timedelta:
        return timedelta(seconds=self.ctx.settings.upload_expiry_s)

    # -- creation ----------------------------------------------------------------------------------------

    async def create(
        self,
        principal: Principal,
        workspace_name: str,
        volume_name: str,
        length: int,
        metadata_header: str,
        whole: bytes | None = None,
        checksum: Checksum | None = None,
    ) -> UploadState:
        """With `whole` (all the bytes, sent with the creation request), the file is complete when this
        returns: one transaction instead of two, which is what makes folders of small files fast."""
        target = f"{workspace_name}/{volume_name}"
        try:
            if whole is not None:
                _check_whole(whole, length, checksum)
            metadata = parse_metadata(metadata_header)
            path = destination_of(metadata, metadata.get("dir", ""))
            async with self.ctx.read() as session:
                _, volume = await find_volume(
                    session, principal, workspace_name, volume_name, WorkspaceRole.MEMBER
                )
        except ServiceError as exc:
            await self.ctx.record_refusal(principal, "upload.create", target, exc, workspace_name)
            raise
        upload_id = new_id(24)
        async with (
            self.disk.storage_lock(volume.workspace_id),
            self.ctx.mutation(principal, "upload.create", f"{target}:/{path}", workspace_name) as mutation,
        ):
            session = mutation.session
            _, volume = await find_volume(
                session, principal, workspace_name, volume_name, WorkspaceRole.MEMBER
            )
            await self._check_room(session, volume, path, length)
            now = datetime.now(UTC)
            upload = Upload(
                id=upload_id,
                volume_id=volume.id,
                path=path,
                length=length,
                metadata_header=metadata_header,
                created_by=principal.user_id,
                created_at=now,
                expires_at=now + self._ttl,
                completed_at=now if length == 0 else None,
            )
            UploadRepository(session).add(upload)
            await session.flush()
            mutation.detail = f"id={upload_id}, length={length}"
            await asyncio.to_thread(self.disk.files.create_part, upload_id)
            try:
                if whole:
                    await asyncio.to_thread(self.disk.files.fill_part, upload_id, whole)
                    mutation.detail += ", complete in one request"
                if length == 0 or whole:  # nothing will follow: the file is complete now
                    await self._place(upload, volume)
                await session.flush()
            except OSError as exc:
                await asyncio.to_thread(self.disk.files.remove_part, upload_id)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise InsufficientStorage("the disk holding volumes is full; nothing was kept") from exc
                raise
            except BaseException:
                await asyncio.to_thread(self.disk.files.remove_part, upload_id)
                raise
        return _state(upload, length if upload.completed_at else 0)

    async def _check_room(self, session: AsyncSession, volume: Volume, path: str, length: int) -> None:
        files = self.disk.files
        try:
            replaced = await asyncio.to_thread(files.existing_file_size, volume.workspace_id, volume.id, path)
        except PathRefused as exc:
            raise Conflict(str(exc)) from exc
        uploads = UploadRepository(session)
        for pending in await uploads.unfinished_in([volume.id]):
            if pending.path == path:
                raise Conflict(
                    f"another upload ({pending.id}) is writing /{path} in volume {volume.name!r}; "
                    "resume or cancel it first"
                )
        growth = length - replaced
        if volume.size_limit is not None:
            used = (await self.disk.usage(volume)).bytes
            reserved = sum(u.length for u in await uploads.unfinished_in([volume.id]))
            if used + reserved + growth > volume.size_limit:
                raise PayloadTooLarge(
                    f"volume {volume.name!r} has a size limit of {format_bytes(volume.size_limit)} "
                    f"({volume.size_limit} bytes); it holds {used} bytes and unfinished uploads reserve "
                    f"{reserved} more, so {length} more bytes do not fit "
                    f"(room left: {max(0, volume.size_limit - used - reserved)} bytes)"
                )
        limit = next(
            (
                entry.limit
                for entry in await QuotaRepository(session).for_workspace(volume.workspace_id)
                if entry.resource == STORAGE_RESOURCE
            ),
            None,
        )
        if limit is not None:
            used, reserved = await storage_used(session, self.disk, volume.workspace_id)
            if used + reserved + growth > limit:
                raise PayloadTooLarge(
                    f"workspace {volume.workspace.name!r} has a storage limit of {format_bytes(limit)} "
                    f"({limit} bytes); its volumes hold {used} bytes and unfinished uploads reserve "
                    f"{reserved} more, so {length} more bytes do not fit "
                    f"(room left: {max(0, limit - used - reserved)} bytes)"
                )
        free = await asyncio.to_thread(_free_bytes, files.root)
        if growth > free:
            raise InsufficientStorage(
                f"the disk holding volumes has {free} bytes ({format_bytes(free)}) free; "
                f"this upload needs {length}"
            )

    # -- state -------------------------------------------------------------------------------------------

    async def state(self, principal: Principal, upload_id: str) -> UploadState:
        async with self.ctx.read() as session:
            upload = await self._visible(session, principal, upload_id)
        return _state(upload, await self._offset(upload))

    async def _offset(self, upload: Upload) -> int:
        if upload.completed_at is not None:
            return upload.length
        size = await asyncio.to_thread(self.disk.files.part_size, upload.id)
        if size is None:
            raise Gone(f"upload {upload.id} lost its data (its part file is gone); start it again")
        return size

    async def _visible(self, session: AsyncSession, principal: Principal, upload_id: str) -> Upload:
        upload = await UploadRepository(session).get(upload_id)
        if upload is None or not principal.can(upload.volume.workspace_id, WorkspaceRole.MEMBER):
            raise NotFound(f"upload {upload_id!r} does not exist (it may have expired or been cancelled)")
        return upload

    # -- appending ---------------------------------------------------------------------------------------

    async def append(
        self,
        principal: Principal,
        upload_id: str,
        offset: int,
        body: AsyncIterator[bytes],
        checksum: Checksum | None,
        content_length: int | None,
    ) -> UploadState:
        async with self.ctx.read() as session:
            upload = await self._visible(session, principal, upload_id)
        if upload.completed_at is not None:
            raise Conflict(f"upload {upload_id} is already complete ({upload.length} bytes)")
        if content_length is not None and offset + content_length > upload.length:
            raise PayloadTooLarge(
                f"this request carries {content_length} bytes from offset {offset}, past the upload's "
                f"length of {upload.length}"
            )
        async with self._exclusive(upload_id) as slot:
            position = await _supersedable(slot, self._write(upload, offset, body, checksum))
            if position == upload.length:
                await self._complete(principal, upload)
            else:
                await self._extend_expiry(upload)
        state = _state(upload, position)
        return UploadState(
            id=state.id,
            offset=position,
            length=state.length,
            metadata_header=state.metadata_header,
            expires_at=state.expires_at,
            completed=position == upload.length,
        )

    @contextlib.asynccontextmanager
    async def _exclusive(self, upload_id: str) -> AsyncIterator[_WriterSlot]:
        """One writer per upload. A newer request supersedes the one writing: a client only sends again
        after giving up on its previous request, whose connection may be half-open for a long time
        (no reset ever reached the server), and must not keep the upload locked meanwhile."""
        slot = self._writing.setdefault(upload_id, _WriterSlot())
        slot.waiting += 1
        if slot.writer is not None:
            slot.writer.cancel()  # it keeps (or, with a checksum, drops) what it received, then stops
        try:
            await asyncio.wait_for(slot.lock.acquire(), LOCK_WAIT_S)
        except TimeoutError as exc:
            raise Locked(f"another request is writing upload {upload_id}; retry shortly") from exc
        finally:
            slot.waiting -= 1
        try:
            yield slot
        finally:
            slot.writer = None
            slot.lock.release()
            if not slot.waiting and not slot.lock.locked():
                self._writing.pop(upload_id, None)

    async def _write(
        self, upload: Upload, offset: int, body: AsyncIterator[bytes], checksum: Checksum | None
    ) -> int:
        """Stream the body into the part file; returns the new, fsync'd offset."""
        path = str(self.disk.files.part_path(upload.id))
        try:
            writer = await _settled(PartWriter, path, offset, checksum.algorithm if checksum else None)
        except FileNotFoundError as exc:
            raise Gone(f"upload {upload.id} lost its data (its part file is gone); start it again") from exc
        except OffsetMismatch as exc:
            raise Conflict(
                f"Upload-Offset {offset} does not match the upload's offset {exc.actual}; ask with HEAD "
                "and resume from there"
            ) from exc
        try:
            await self._stream_into(writer, upload, body, checksum)
            if checksum is not None and writer.digest() != checksum.digest:
                await _settled(writer.roll_back)
                raise ChecksumMismatch(
                    f"the {checksum.algorithm} of this chunk does not match Upload-Checksum; it was "
                    f"discarded and the upload stays at offset {offset}"
                )
            return await _settled(writer.keep)
        finally:
            await _settled(writer.close)

    async def _stream_into(
        self, writer: PartWriter, upload: Upload, body: AsyncIterator[bytes], checksum: Checksum | None
    ) -> None:
        """Receive, write and hash at once: a full batch is written in one worker thread and hashed in
        another (hashlib and the write both run without the GIL) while the next batch arrives, so the
        socket is not left unread while the disk works, and the checksum does not add to the write's time.
        At most one batch is in flight and batches are written in order; every way out waits for it."""
        pending: list[bytes] = []
        pending_size = 0
        in_flight: asyncio.Future[None] | None = None  # the worker threads' write of the previous batch
        end = writer.position  # where this request's bytes so far end (the thread moves the writer's)
        try:
            async for piece in body:
                end += len(piece)
                if end > upload.length:
                    raise PayloadTooLarge(
                        f"the request goes past the upload's declared length of {upload.length} bytes"
                    )
                pending.append(piece)
                pending_size += len(piece)
                if pending_size >= WRITE_BATCH:
                    if in_flight is not None:
                        await asyncio.shield(in_flight)  # cancelled or not, it finishes (see below)
                    in_flight = _write_and_hash(writer, pending)
                    pending, pending_size = [], 0
            if in_flight is not None:
                await asyncio.shield(in_flight)
                in_flight = None
            if pending:
                batch, pending, pending_size = pending, [], 0
                await _finished_or_raise(_write_and_hash(writer, batch))
        except OSError as exc:
            await _finished(in_flight)
            await _settled(writer.roll_back)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InsufficientStorage(
                    "the disk holding volumes is full; this chunk was discarded and the upload stays at "
                    f"offset {writer.start}. Free some space, then resume"
                ) from exc
            raise
        except PayloadTooLarge:
            await _finished(in_flight)
            await _settled(writer.roll_back)
            raise
        except BaseException:
            # The client went away (or the server is stopping). Without a checksum, what arrived is
            # good and kept; with one, a partial chunk cannot be verified and is dropped.
            written = await _finished(in_flight)
            if pending and written:
                with contextlib.suppress(OSError):
                    await _settled(writer.write_pieces, pending)
            if checksum is not None:
                await _settled(writer.roll_back)
            else:
                await _settled(writer.keep)
            raise

    async def _extend_expiry(self, upload: Upload) -> None:
        """Activity keeps an upload alive; written at most once per tenth of the expiry time."""
        now = datetime.now(UTC)
        if upload.expires_at - now > self._ttl * 0.9:
            return
        async with self.ctx.write() as session:
            row = await UploadRepository(session).get(upload.id)
            if row is not None:
                row.expires_at = now + self._ttl
                upload.expires_at = row.expires_at

    async def _complete(self, principal: Principal, upload: Upload) -> None:
        async with self.ctx.mutation(
            principal, "upload.complete", _target(upload), upload.volume.workspace.name
        ) as mutation:
            row = await UploadRepository(mutation.session).get(upload.id)
            if row is None:
                raise Gone(f"upload {upload.id} was cancelled while its last bytes arrived")
            await self._place(row, upload.volume)
            mutation.detail = f"id={upload.id}, {upload.length} bytes"
            upload.completed_at = row.completed_at

    async def _place(self, upload: Upload, volume: Volume) -> None:
        try:
            replaced = await asyncio.to_thread(
                self.disk.files.place_part, upload.id, volume.workspace_id, volume.id, upload.path
            )
        except PathRefused as exc:
            raise Conflict(f"{exc}; cancel this upload and send the file elsewhere") from exc
        upload.completed_at = datetime.now(UTC)
        upload.expires_at = upload.completed_at + self._ttl
        self.disk.add_file(volume.id, upload.length, replaced)

    # -- termination and expiry ----------------------------------------------------------------------------

    async def terminate(self, principal: Principal, upload_id: str) -> None:
        async with self.ctx.mutation(principal, "upload.terminate", upload_id) as mutation:
            upload = await self._visible(mutation.session, principal, upload_id)
            mutation.target = _target(upload)
            offset = await asyncio.to_thread(self.disk.files.part_size, upload_id)
            mutation.detail = f"id={upload_id}, {offset or 0} of {upload.length} bytes received"
            async with self._exclusive(upload_id):
                await UploadRepository(mutation.session).delete(upload)
                await mutation.session.flush()
                await asyncio.to_thread(self.disk.files.remove_part, upload_id)

    async def expire(self) -> int:
        """Remove uploads past their expiry: unfinished ones (audited, with how far they got), and the
        records of completed ones. Returns how many unfinished uploads were removed."""
        removed = 0
        async with self.ctx.read() as session:
            expired = await UploadRepository(session).expired(datetime.now(UTC))
        for upload in expired:
            if upload.id in self._writing:
                continue  # being written right now: its expiry moves on when the request ends
            if upload.completed_at is not None:
                async with self.ctx.write() as session:
                    row = await UploadRepository(session).get(upload.id)
                    if row is not None:
                        await UploadRepository(session).delete(row)
                continue
            offset = await asyncio.to_thread(self.disk.files.part_size, upload.id)
            async with self.ctx.mutation(
                None, "upload.expire", _target(upload), upload.volume.workspace.name
            ) as mutation:
                row = await UploadRepository(mutation.session).get(upload.id)
                if row is None:
                    continue
                await UploadRepository(mutation.session).delete(row)
                mutation.detail = (
                    f"id={upload.id}: unfinished at {offset or 0} of {upload.length} bytes when it "
                    f"expired ({upload.expires_at.isoformat()})"
                )
            await asyncio.to_thread(self.disk.files.remove_part, upload.id)
            removed += 1
        return removed

    async def sweep_orphans(self) -> None:
        """Part files without a record (a crash between writing one and its record) are removed."""
        async with self.ctx.read() as session:
            known = await UploadRepository(session).all_ids()
        await asyncio.to_thread(_remove_orphans, self.disk, known)

    async def run_cleanup(self) -> None:
        """The background task: sweep at start, then expire every `upload_cleanup_interval_s`."""
        await asyncio.to_thread(self.disk.files.ensure_layout)
        await asyncio.to_thread(self.disk.files.empty_trash)
        while True:
            try:
                await self.sweep_orphans()
                removed = await self.expire()
                if removed:
                    log.info("removed %d expired unfinished uploads", removed)
            except Exception:
                log.exception("the upload cleanup failed; retrying at the next interval")
            await asyncio.sleep(self.ctx.settings.upload_cleanup_interval_s)


async def _settled(function: Callable[..., T], *args: Any) -> T:
    """`function` in a worker thread; if the caller is cancelled meanwhile, the call still finishes
    before the cancellation goes on, so that clean-up never races a write to the same file."""
    future = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait({future})
        raise


def _write_and_hash(writer: PartWriter, pieces: list[bytes]) -> asyncio.Future[None]:
    """Write `pieces` in one worker thread while another hashes them; done when both are (a failure of
    one does not leave the other running behind the caller's back)."""

    async def both() -> None:
        outcomes = await asyncio.gather(
            asyncio.to_thread(writer.append, pieces),
            asyncio.to_thread(writer.hash, pieces),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    return asyncio.ensure_future(both())


async def _finished_or_raise(write: asyncio.Future[None]) -> None:
    """Like `_settled`: if the caller is cancelled meanwhile, the write still finishes first."""
    try:
        await asyncio.shield(write)
    except asyncio.CancelledError:
        await asyncio.wait({write})
        raise


async def _finished(write: asyncio.Future[None] | None) -> bool:
    """Wait until a write started in a worker thread is over; whether it wrote everything."""
    if write is None:
        return True
    await asyncio.wait({write})
    return not write.cancelled() and write.exception() is None


async def _supersedable(slot: _WriterSlot, write: Coroutine[Any, Any, int]) -> int:
    """Run the body's writing as a task that a newer request for the same upload may cancel."""
    task = asyncio.ensure_future(write)
    slot.writer = task
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if task.cancelled() and current is not None and not current.cancelling():
            raise Conflict("a newer request for this upload took over from this one") from None
        raise


def _free_bytes(root: os.PathLike[str]) -> int:
    os.makedirs(root, exist_ok=True)
    info = os.statvfs(root)
    return info.f_bavail * info.f_frsize


def _remove_orphans(disk: VolumeDisk, known: set[str]) -> None:
    parts = disk.files.root / ".uploads"
    if not parts.is_dir():
        return
    for part in parts.iterdir():
        if part.name in known:
            continue
        with contextlib.suppress(FileNotFoundError):
            if time.time() - part.stat().st_mtime > ORPHAN_PART_AGE_S:
                part.unlink()
