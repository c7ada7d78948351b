"""Files of volumes on disk: where each volume lives, what it holds, and safe access inside it.

Layout under the volumes directory (one file system, so finishing an upload is an atomic rename):

    <root>/<workspace id>/<volume id>/...   the volume's files, as workloads see them
    <root>/.uploads/<upload id>             the bytes of an unfinished upload (its size is its offset)
    <root>/.trash/<volume id>               a deleted volume, removed after the deletion is committed

Every path a user gives is walked one component at a time with `O_NOFOLLOW` from an open directory, so
neither `..` nor a symbolic link planted by a workload (which may write into a mounted volume) can lead
outside the volume, even if the link appears between a check and a use. Blocking calls: run them in a
worker thread."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

UPLOADS_DIR = ".uploads"
# Inside a volume, files and folders are open to whoever mounts it (a sandboxed local workload runs as
# its workspace's own uid, a pod as its image's user): what guards a volume is that only its workspace's
# workloads mount it, and that the volumes' root is the server's alone.
SHARED_DIR_MODE = 0o777
SHARED_FILE_MODE = 0o666
TRASH_DIR = ".trash"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class PathRefused(ValueError):
    """The path does not name something inside the volume (missing, a link out, or the wrong type)."""


@dataclass(frozen=True, slots=True)
class Usage:
    bytes: int
    files: int


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    type: str  # file | dir | symlink | other
    size: int
    modified: float


class VolumeFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- places ------------------------------------------------------------------------------------------

    def volume_dir(self, workspace_id: str, volume_id: str) -> Path:
        return self.root / workspace_id / volume_id

    def part_path(self, upload_id: str) -> Path:
        return self.root / UPLOADS_DIR / upload_id

    def ensure_layout(self) -> None:
        if not self.root.exists():
            # Only the server passes through the root: volumes are reached through their own mounts.
            self.root.mkdir(parents=True, mode=0o700)
        (self.root / UPLOADS_DIR).mkdir(exist_ok=True)
        (self.root / TRASH_DIR).mkdir(exist_ok=True)

    def create_volume_dir(self, workspace_id: str, volume_id: str) -> Path:
        self.ensure_layout()
        path = self.volume_dir(workspace_id, volume_id)
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, SHARED_DIR_MODE)
        _fsync_dir(path.parent)
        return path

    def trash_volume(self, workspace_id: str, volume_id: str) -> Path | None:
        """Move the volume out of sight atomically; `empty_trash` removes it once the deletion is kept."""
        source = self.volume_dir(workspace_id, volume_id)
        target = self.root / TRASH_DIR / volume_id
        self.ensure_layout()
        try:
            source.rename(target)
        except FileNotFoundError:
            return None
        return target

    def restore_volume(self, workspace_id: str, volume_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / TRASH_DIR / volume_id).rename(self.volume_dir(workspace_id, volume_id))

    def empty_trash(self) -> None:
        trash = self.root / TRASH_DIR
        if trash.is_dir():
            for child in trash.iterdir():
                shutil.rmtree(child, ignore_errors=True)

    # -- measuring ---------------------------------------------------------------------------------------

    def usage(self, workspace_id: str, volume_id: str) -> Usage:
        """Bytes (apparent sizes of regular files) and files, counted on disk; links are not followed."""
        total = files = 0
        for _dirpath, _dirnames, filenames, dirfd in _walk(self.volume_dir(workspace_id, volume_id)):
            for name in filenames:
                try:
                    info = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while we counted
                if stat.S_ISREG(info.st_mode):
                    total += info.st_size
                    files += 1
        return Usage(bytes=total, files=files)

    def part_size(self, upload_id: str) -> int | None:
        try:
            return self.part_path(upload_id).stat().st_size
        except FileNotFoundError:
            return None

    # -- paths inside a volume ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def open_dir(
        self, workspace_id: str, volume_id: str, parts: list[str], create: bool = False
    ) -> Iterator[int]:
        """A descriptor of the directory `parts` inside the volume, walked without following links."""
        fd = os.open(self.volume_dir(workspace_id, volume_id), _DIR_FLAGS)
        try:
            for part in parts:
                child = _step_into(fd, part, create)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def entry_type(self, workspace_id: str, volume_id: str, path: str) -> str:
        """file | dir (the volume's root is a dir); PathRefused when there is nothing usable there."""
        parts = _parts(path)
        if not parts:
            return "dir"
        with self.open_dir(workspace_id, volume_id, parts[:-1]) as parent:
            try:
                info = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError as exc:
                raise PathRefused(f"{path!r} does not exist in this volume") from exc
        return _type_of(info.st_mode)

    def list_dir(self, workspace_id: str, volume_id: str, path: str) -> list[Entry]:
        with self.open_dir(workspace_id, volume_id, _parts(path)) as fd:
            entries = []
            with os.scandir(fd) as scan:
                for item in scan:
                    try:
                        info = item.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    kind = _type_of(info.st_mode)
                    size = info.st_size if kind == "file" else 0
                    entries.append(Entry(item.name, kind, size, info.st_mtime))
        return sorted(entries, key=lambda e: (e.type != "dir", e.name))

    def open_file(self, workspace_id: str, volume_id: str, path: str) -> tuple[int, os.stat_result]:
        """An open, regular file inside the volume (the caller closes the descriptor)."""
        parts = _parts(path)
        if not parts:
            raise PathRefused("the volume's root is a folder, not a file")
        with self.open_dir(workspace_id, volume_id, parts[:-1]) as parent:
            try:
                fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            except FileNotFoundError as exc:
                raise PathRefused(f"{path!r} does not exist in this volume") from exc
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise PathRefused(f"{path!r} is a symbolic link; links are not followed") from exc
                raise
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise PathRefused(f"{path!r} is not a file")
        return fd, info

    def existing_file_size(self, workspace_id: str, volume_id: str, path: str) -> int:
        """The size of the regular file at `path` (0 when none); refuses a folder or link in the way."""
        parts = _parts(path)
        try:
            with self.open_dir(workspace_id, volume_id, parts[:-1]) as parent:
                info = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
        except (FileNotFoundError, PathRefused):
            return 0  # nothing there yet (or a parent that will be created)
        if not stat.S_ISREG(info.st_mode):
            kind = {"dir": "folder", "symlink": "symbolic link"}.get(_type_of(info.st_mode), "special file")
            raise PathRefused(f"{path!r} is a {kind} in this volume; a file cannot go there")
        return info.st_size

    def walk_files(
        self, workspace_id: str, volume_id: str, path: str
    ) -> Iterator[tuple[str, int, os.stat_result]]:
        """(relative path, open descriptor or -1 for folders/links, stat) for everything under `path`."""
        base = _parts(path)
        with self.open_dir(workspace_id, volume_id, base) as top:
            yield from _walk_fd(os.dup(top), "")

    # -- finishing uploads -------------------------------------------------------------------------------

    def create_part(self, upload_id: str) -> None:
        self.ensure_layout()
        # Not fsync'd: until the first acknowledged bytes (fsync'd with the file), a lost part file only
        # means the client starts over, which it learns from a 410.
        fd = os.open(self.part_path(upload_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.close(fd)

    def fill_part(self, upload_id: str, data: bytes) -> None:
        """All the bytes of an upload at once (sent with its creation), fsync'd."""
        fd = os.open(self.part_path(upload_id), os.O_WRONLY | os.O_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def remove_part(self, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.part_path(upload_id).unlink()

    def place_part(self, upload_id: str, workspace_id: str, volume_id: str, path: str) -> int | None:
        """Move a complete upload to its place in the volume (atomic; replaces a file already there).
        Returns the size of the file it replaced, None when there was none."""
        parts = _parts(path)
        replaced = None
        with self.open_dir(workspace_id, volume_id, parts[:-1], create=True) as parent:
            with contextlib.suppress(FileNotFoundError):
                info = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    raise PathRefused(f"{path!r} is a folder in this volume; a file cannot replace it")
                replaced = info.st_size if stat.S_ISREG(info.st_mode) else 0
            os.chmod(self.part_path(upload_id), SHARED_FILE_MODE)  # private while partial
            os.rename(self.part_path(upload_id), parts[-1], dst_dir_fd=parent)
            os.fsync(parent)
        return replaced


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def _type_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _step_into(fd: int, part: str, create: bool) -> int:
    """The folder `part` of the folder `fd` (left open), refusing links; created when asked."""
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise PathRefused(f"folder {part!r} does not exist in this volume") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PathRefused(f"{part!r} in this volume is a symbolic link or a file, not a folder") from exc
        raise
    created = False
    with contextlib.suppress(FileExistsError):
        os.mkdir(part, dir_fd=fd)
        created = True
    try:
        child = os.open(part, _DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        raise PathRefused(f"{part!r} in this volume is not a folder") from exc
    if created:
        os.fchmod(child, SHARED_DIR_MODE)
    return child


def _walk(top: Path) -> Iterator[tuple[str, list[str], list[str], int]]:
    if not top.is_dir():
        return
    yield from os.fwalk(top, follow_symlinks=False)


def _walk_fd(fd: int, prefix: str) -> Iterator[tuple[str, int, os.stat_result]]:
    """Depth first, names sorted; each file is opened relative to its folder's descriptor."""
    try:
        with os.scandir(fd) as scan:
            items = sorted(scan, key=lambda item: item.name)
        for item in items:
            relative = f"{prefix}{item.name}"
            try:
                info = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(info.st_mode):
                yield relative, -1, info
                try:
                    child = os.open(item.name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                yield from _walk_fd(child, relative + "/")
            elif stat.S_ISREG(info.st_mode):
                try:
                    file_fd = os.open(item.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except OSError:
                    continue
                yield relative, file_fd, info
            elif stat.S_ISLNK(info.st_mode):
                yield relative, -1, info
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
