"""Serving one open file with HTTP range requests (RFC 9110 §14): resumable, seekable downloads."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from email.utils import formatdate
from urllib.parse import quote

from fastapi.responses import Response, StreamingResponse

from astrago.api.problems import problem

PIECE = 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(first, last) inclusive; None: send it all; "unsatisfiable": answer 416. Several ranges at once
    are answered with the whole file, which RFC 9110 allows."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # the last N bytes
        length = int(last_text)
        if length == 0:
            return "unsatisfiable"
        return max(0, size - length), size - 1
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or last < first:
        return "unsatisfiable"
    return first, last


def _pieces(fd: int, first: int, last: int) -> Iterator[bytes]:
    try:
        position = first
        while position <= last:
            piece = os.pread(fd, min(PIECE, last - position + 1), position)
            if not piece:
                return
            position += len(piece)
            yield piece
    finally:
        os.close(fd)


def attachment(filename: str) -> str:
    """Content-Disposition for any file name (RFC 6266 with an RFC 5987 UTF-8 name)."""
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def file_response(fd: int, info: os.stat_result, filename: str, range_header: str | None) -> Response:
    size = info.st_size
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": attachment(filename),
        "Last-Modified": formatdate(info.st_mtime, usegmt=True),
        "ETag": f'"{info.st_ino:x}-{info.st_size:x}-{int(info.st_mtime_ns):x}"',
    }
    wanted = byte_range(range_header, size)
    if wanted == "unsatisfiable":
        os.close(fd)
        response = problem(416, "Range not satisfiable", f"the file has {size} bytes")
        response.headers["Content-Range"] = f"bytes */{size}"
        return response
    if wanted is None or isinstance(wanted, str):
        headers["Content-Length"] = str(size)
        return StreamingResponse(
            _pieces(fd, 0, size - 1), media_type="application/octet-stream", headers=headers
        )
    first, last = wanted
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(
        _pieces(fd, first, last), status_code=206, media_type="application/octet-stream", headers=headers
    )
