"""Appending one request's bytes to an upload's part file, all or nothing when a checksum is given.

The part file's size is the upload's offset. `keep` fsyncs before the new offset is acknowledged, so an
acknowledged offset survives a kill -9 of the server (and a power cut, on file systems that honour
fsync); `roll_back` truncates to where the request started (a wrong checksum, a full disk). Bytes are
written behind: their writeback starts as each batch is written, not at the fsync."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence

_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024)
_FADVISE = getattr(os, "posix_fadvise", None)  # Linux and most Unixes; not macOS
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}


class OffsetMismatch(Exception):
    def __init__(self, actual: int) -> None:
        super().__init__(f"the part file holds {actual} bytes")
        self.actual = actual


class PartWriter:
    def __init__(self, path: str, offset: int, algorithm: str | None) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        actual = os.fstat(self.fd).st_size
        if actual != offset:
            os.close(self.fd)
            raise OffsetMismatch(actual)
        self.start = offset
        self.position = offset
        self._behind = offset  # from where the pages of this request may still be cached
        self._hash = CHECKSUM_ALGORITHMS[algorithm]() if algorithm else None

    def write(self, data: bytes) -> None:
        self.write_pieces([data])

    def write_pieces(self, pieces: Sequence[bytes]) -> None:
        """Append `pieces` in order and hash them."""
        self.append(pieces)
        self.hash(pieces)

    def append(self, pieces: Sequence[bytes]) -> None:
        """Append `pieces` in order with as few system calls as the kernel allows (one `pwritev` for a
        batch, without joining it into one buffer first)."""
        batch_start = self.position
        for start in range(0, len(pieces), _IOV_MAX):
            self._pwritev(pieces[start : start + _IOV_MAX])
        self._write_behind(self._behind, self.position)
        self._behind = batch_start

    def hash(self, pieces: Sequence[bytes]) -> None:
        """Add `pieces` to the checksum (if any), in order. It reads only the pieces, not the writer's
        position, so it may run in another thread while `append` writes the same pieces."""
        if self._hash is not None:
            for piece in pieces:
                self._hash.update(piece)

    def _pwritev(self, pieces: Sequence[bytes]) -> None:
        total = sum(len(piece) for piece in pieces)
        written = os.pwritev(self.fd, pieces, self.position)
        self.position += written
        if written == total:
            return
        rest = memoryview(b"".join(pieces))[written:]  # a short write (rare): finish piece by piece
        while rest:
            written = os.pwrite(self.fd, rest, self.position)
            self.position += written
            rest = rest[written:]

    def _write_behind(self, start: int, end: int) -> None:
        """Start writing the bytes between `start` and `end` to the disk now, in the background, and let
        go of the cached pages among them that already reached it (POSIX_FADV_DONTNEED does both on
        Linux: it starts the writeback of dirty pages and drops clean ones). Called with the batch just
        written and the one before it (whose writeback has had a batch's time to finish): the fsync
        that acknowledges a chunk then waits for its tail only, not for the whole chunk after its last
        byte, and the pages let go of are the ones the next batches are written into, so an upload
        neither fills the page cache nor evicts what others read from it."""
        if _FADVISE is not None and end > start:
            with contextlib.suppress(OSError):  # advice: a file system that ignores it loses nothing
                _FADVISE(self.fd, start, end - start, os.POSIX_FADV_DONTNEED)

    def digest(self) -> bytes:
        assert self._hash is not None
        return self._hash.digest()

    def keep(self) -> int:
        os.fsync(self.fd)
        self._write_behind(self._behind, self.position)  # all on disk now: nothing left to cache
        self._behind = self.position
        return self.position

    def roll_back(self) -> None:
        os.ftruncate(self.fd, self.start)
        os.fsync(self.fd)
        self.position = self.start

    def close(self) -> None:
        os.close(self.fd)
