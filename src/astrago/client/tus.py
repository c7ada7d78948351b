"""The client side of TUS 1.0 uploads (core, creation, creation-with-upload, checksum): one local file
into one upload, over `httpx`, with a sha256 `Upload-Checksum` on every chunk.

What it costs per byte is what bounds an upload on a busy machine, so each chunk is read once into a
buffer that is reused for the whole file (no fresh allocation per chunk), hashed from that buffer, and
sent from it in pieces. The next chunk is read and hashed while the server still writes and fsyncs
the one just sent (the server acknowledges a chunk only once it is on disk), instead of after its
answer: the client's hashing overlaps the server's work rather than adding to it.

Errors: `TusRefused` is an answer that asking again will not change (a 4xx other than a conflict or a
checksum mismatch); `TusRetryable` is one that may pass (a dropped connection, a restarting server, a
chunk the server discarded): ask for the offset with `offset()` and go on from there."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

TUS_VERSION = "1.0.0"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
SEND_PIECE_BYTES = 1024 * 1024  # handed to the socket at a time: small enough to stay in the CPU cache
# Worth asking for the offset and trying again: a conflict (a newer request, an offset that moved), a
# locked upload, a discarded chunk (460: checksum mismatch) and a server that is restarting.
RETRY_STATUSES = frozenset({409, 423, 460, 500, 502, 503, 504})


class TusError(Exception):
    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class TusRefused(TusError):
    """The server refused in a way that asking again will not change."""


class TusRetryable(TusError):
    """The connection dropped, or the server answered with something that may pass."""


@dataclass(frozen=True, slots=True)
class _Chunk:
    offset: int
    length: int
    checksum: str  # the Upload-Checksum header's value

    @property
    def end(self) -> int:
        return self.offset + self.length


def metadata_header(metadata: Mapping[str, str]) -> str:
    """`Upload-Metadata`: `key base64(value)` pairs, comma separated."""
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items())


def _checksum(data: bytes | memoryview) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


def _detail(response: httpx.Response) -> str:
    """The problem+json `detail` of a refusal, else the status line."""
    try:
        detail = json.loads(response.content)["detail"]
    except (ValueError, TypeError, KeyError):
        return f"the server answered {response.status_code} {response.reason_phrase}".strip()
    return str(detail)


def _untrusted_certificate(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _failed(response: httpx.Response) -> TusError:
    kind = TusRetryable if response.status_code in RETRY_STATUSES else TusRefused
    return kind(_detail(response), response.status_code)


class TusFile:
    """One local file's upload. `http` carries the server's address and the credentials; it must not be
    used by another thread meanwhile (one `TusFile` per worker thread at a time)."""

    def __init__(self, http: httpx.Client, path: Path, size: int, chunk_bytes: int) -> None:
        self.http = http
        self.path = path
        self.size = size
        self._buffer = bytearray(min(chunk_bytes, size))
        self._prepared: _Chunk | None = None  # what `_buffer` holds now

    def create(self, create_url: str, metadata: Mapping[str, str]) -> str:
        """Create the upload (nothing is sent yet); its address."""
        headers = {
            "Tus-Resumable": TUS_VERSION,
            "Upload-Length": str(self.size),
            "Upload-Metadata": metadata_header(metadata),
        }
        response = self._request("POST", create_url, headers)
        location = response.headers.get("location")
        if response.status_code != 201 or location is None:
            raise _failed(response)
        return str(httpx.URL(create_url).join(location))

    def create_whole(self, create_url: str, metadata: Mapping[str, str]) -> bool:
        """Small files: one request creates the upload and carries all its bytes (creation-with-upload).
        False when the server kept less than all of it (then create one and send it in chunks)."""
        data = self.path.read_bytes()
        if len(data) != self.size:
            raise TusRefused("the file changed size while it was being uploaded; run the upload again")
        headers = {
            "Tus-Resumable": TUS_VERSION,
            "Upload-Length": str(self.size),
            "Upload-Metadata": metadata_header(metadata),
            "Content-Type": OFFSET_CONTENT_TYPE,
            "Upload-Checksum": _checksum(data),
        }
        response = self._request("POST", create_url, headers, content=data)
        if response.status_code != 201:
            raise _failed(response)
        return int(response.headers.get("upload-offset", -1)) == self.size

    def offset(self, url: str) -> int:
        """How many bytes the server holds (fsync'd): where to go on from."""
        response = self._request("HEAD", url, {"Tus-Resumable": TUS_VERSION})
        offset = response.headers.get("upload-offset")
        if response.status_code != 200 or offset is None:
            kind = TusRetryable if response.status_code in RETRY_STATUSES else TusRefused
            raise kind(
                f"asking for the upload's offset: the server answered {response.status_code}",
                response.status_code,
            )
        return int(offset)

    def send_from(
        self, url: str, offset: int, acknowledged: Callable[[int], None], stop: Callable[[], bool]
    ) -> None:
        """Send the file from `offset` to its end, one chunk per PATCH; `acknowledged(offset)` after each
        chunk the server has on disk. Returns early when `stop()` says so."""
        while offset < self.size and not stop():
            chunk = self._chunk_at(offset)
            headers = {
                "Tus-Resumable": TUS_VERSION,
                "Upload-Offset": str(chunk.offset),
                "Content-Type": OFFSET_CONTENT_TYPE,
                "Content-Length": str(chunk.length),
                "Upload-Checksum": chunk.checksum,
            }
            response = self._request("PATCH", url, headers, content=self._body(chunk))
            if response.status_code != 204:
                raise _failed(response)
            offset = int(response.headers["upload-offset"])
            acknowledged(offset)

    def _chunk_at(self, offset: int) -> _Chunk:
        if self._prepared is not None and self._prepared.offset == offset:
            return self._prepared
        return self._prepare(offset)

    def _prepare(self, offset: int) -> _Chunk:
        """Read the chunk at `offset` into the buffer and hash it."""
        length = min(len(self._buffer), self.size - offset)
        view = memoryview(self._buffer)[:length]
        self._prepared = None
        with self.path.open("rb", buffering=0) as source:
            read = os.preadv(source.fileno(), [view], offset)
        if read != length:
            raise TusRefused("the file is shorter than when its upload started; run the upload again")
        self._prepared = _Chunk(offset, length, _checksum(view))
        return self._prepared

    def _body(self, chunk: _Chunk) -> Iterator[bytes]:
        view = memoryview(self._buffer)[: chunk.length]
        for start in range(0, chunk.length, SEND_PIECE_BYTES):
            yield bytes(view[start : start + SEND_PIECE_BYTES])
        # Every byte of this chunk is in the socket (each piece was copied out of the buffer): read and
        # hash the next one now, while the server writes and fsyncs this one before it answers.
        if chunk.end < self.size:
            self._prepare(chunk.end)

    def _request(
        self, method: str, url: str, headers: dict[str, str], content: bytes | Iterator[bytes] | None = None
    ) -> httpx.Response:
        try:
            return self.http.request(method, url, headers=headers, content=content)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            if _untrusted_certificate(exc):  # asking again will not make it trusted
                raise TusRefused(f"the server at {url} is not trusted: {reason}") from exc
            raise TusRetryable(f"the connection to {url} failed: {reason}") from exc
