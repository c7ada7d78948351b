"""A folder of a volume as an uncompressed tar stream, produced while it is sent.

Headers are written by `tarfile` (PAX, so long and non-ASCII names survive); contents are copied in
pieces straight from each open file, so memory stays flat for any folder size. A file that shrinks while
it is read is padded with zeros to the size its header announced (the archive stays valid); one that
grows is cut at that size."""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterator

from astrago.storage.files import VolumeFiles

PIECE = 1024 * 1024
BLOCK = tarfile.BLOCKSIZE


def tar_stream(files: VolumeFiles, workspace_id: str, volume_id: str, path: str, top: str) -> Iterator[bytes]:
    """`top` is the folder name the archive's entries start with (e.g. `train/…`)."""
    for relative, fd, info in files.walk_files(workspace_id, volume_id, path):
        name = f"{top}/{relative}" if top else relative
        entry = tarfile.TarInfo(name)
        entry.mtime = int(info.st_mtime)
        entry.mode = stat.S_IMODE(info.st_mode)
        if fd < 0:
            if stat.S_ISDIR(info.st_mode):
                entry.type = tarfile.DIRTYPE
            else:  # a symbolic link: kept as a link, never followed
                entry.type = tarfile.SYMTYPE
                entry.linkname = _link_target(files, workspace_id, volume_id, path, relative)
            yield entry.tobuf(format=tarfile.PAX_FORMAT)
            continue
        try:
            entry.size = info.st_size
            yield entry.tobuf(format=tarfile.PAX_FORMAT)
            yield from _contents(fd, info.st_size)
        finally:
            os.close(fd)
        remainder = entry.size % BLOCK
        if remainder:
            yield b"\0" * (BLOCK - remainder)
    yield b"\0" * (2 * BLOCK)


def _contents(fd: int, size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        piece = os.pread(fd, min(PIECE, size - sent), sent)
        if not piece:
            yield b"\0" * (size - sent)
            return
        sent += len(piece)
        yield piece


def _link_target(files: VolumeFiles, workspace_id: str, volume_id: str, base: str, relative: str) -> str:
    parts = [p for p in f"{base}/{relative}".split("/") if p]
    try:
        with files.open_dir(workspace_id, volume_id, parts[:-1]) as parent:
            return os.readlink(parts[-1], dir_fd=parent)
    except OSError:
        return ""
