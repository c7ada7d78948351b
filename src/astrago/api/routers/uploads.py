"""The TUS 1.0 resumable upload protocol (core, creation, creation-with-upload, termination, checksum,
expiration) over the upload use cases. https://tus.io/protocols/resumable-upload

Create:  POST /api/v1/workspaces/{workspace}/volumes/{name}/uploads   (Upload-Length, Upload-Metadata
         with `path`: where the file goes inside the volume; a body is the first chunk)
Resume:  HEAD  /api/v1/uploads/{id}    → Upload-Offset
Send:    PATCH /api/v1/uploads/{id}    (Upload-Offset, application/offset+octet-stream, Upload-Checksum)
Cancel:  DELETE /api/v1/uploads/{id}

Bodies are streamed to disk as they arrive, never held in memory whole."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status
from starlette.requests import ClientDisconnect

from astrago.api.body_limit import body_limit
from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.api.problems import problem
from astrago.services.errors import InvalidInput, ServiceError, UnsupportedMediaType
from astrago.services.uploads import UploadState, parse_checksum
from astrago.storage.parts import CHECKSUM_ALGORITHMS

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
MAX_UPLOAD_BYTES = 16 * 1024**4  # 16 TiB: a sanity bound; volumes and quotas set the real limits
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION}
WHOLE_BODY_MAX = 4 * 1024 * 1024  # creation requests carrying a whole file up to this size: one step

router = APIRouter(tags=["uploads"])


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: the problem+json answers an operation may give."""
    described = {
        404: "no such volume or upload in your workspaces",
        410: "the upload's bytes are gone (lost in a crash): start it again",
        409: "the offset does not match, or the destination is taken",
        412: "Tus-Resumable is missing or not 1.0.0",
        413: "past the upload's length, the volume's size limit or the workspace's storage limit",
        415: "the body is not application/offset+octet-stream",
        422: "a header or the destination path is not valid",
        423: "another request is writing this upload",
        460: "the chunk's checksum does not match; it was discarded",
        507: "the disk holding volumes is full",
    }
    return {
        status: {"description": described[status], "content": {"application/problem+json": {}}}
        for status in statuses
    }


def _check_version(tus_resumable: str | None) -> Response | None:
    if tus_resumable != TUS_VERSION:
        detail = f"this server speaks TUS {TUS_VERSION}; send Tus-Resumable: {TUS_VERSION}"
        response = problem(412, "Precondition failed", detail)
        response.headers["Tus-Version"] = TUS_VERSION
        return response
    return None


def _tus_error(exc: ServiceError) -> Response:
    response = problem(exc.status, exc.title, exc.detail)
    response.headers.update(TUS_HEADERS)
    return response


def _state_headers(state: UploadState) -> dict[str, str]:
    headers = {
        **TUS_HEADERS,
        "Upload-Offset": str(state.offset),
        "Upload-Length": str(state.length),
        "Cache-Control": "no-store",
    }
    if not state.completed:
        headers["Upload-Expires"] = format_datetime(state.expires_at, usegmt=True)
    if state.metadata_header:
        headers["Upload-Metadata"] = state.metadata_header
    return headers


def _int_header(name: str, value: str | None, required: bool) -> int | None:
    if value is None:
        if required:
            raise InvalidInput(f"the {name} header is required")
        return None
    if not value.isdigit():
        raise InvalidInput(f"{name} must be a non-negative integer, not {value[:40]!r}")
    return int(value)


@router.options("/api/v1/uploads", include_in_schema=False)
@router.options("/api/v1/uploads/{upload_id}", include_in_schema=False)
@router.options("/api/v1/workspaces/{workspace}/volumes/{name}/uploads", include_in_schema=False)
async def discover() -> Response:
    return Response(
        status_code=status.HTTP_204_NO_CONTENT,
        headers={
            **TUS_HEADERS,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(MAX_UPLOAD_BYTES),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        },
    )


@router.post(
    "/api/v1/workspaces/{workspace}/volumes/{name}/uploads",
    status_code=201,
    responses=_problems(404, 409, 412, 413, 422, 460, 507),
)
@body_limit(None)  # creation-with-upload: streamed to disk, held to the upload's declared length
async def create_upload(
    workspace: str,
    name: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    upload_length: Annotated[str | None, Header()] = None,
    upload_metadata: Annotated[str, Header(max_length=16384)] = "",
    upload_checksum: Annotated[str | None, Header()] = None,
    content_type: Annotated[str | None, Header()] = None,
    content_length: Annotated[str | None, Header()] = None,
    tus_resumable: Annotated[str | None, Header()] = None,
) -> Response:
    """TUS creation. Refused before a byte is written when it would pass the volume's size limit, the
    workspace's storage limit or the free disk space (413/507, with the numbers)."""
    if (refused := _check_version(tus_resumable)) is not None:
        return refused
    try:
        length = _int_header("Upload-Length", upload_length, required=True)
        assert length is not None
        if length > MAX_UPLOAD_BYTES:
            return _tus_error(InvalidInput(f"Upload-Length is above the server's {MAX_UPLOAD_BYTES} bytes"))
        body_length = _int_header("Content-Length", content_length, required=False) or 0
        with_body = content_type == OFFSET_CONTENT_TYPE and (body_length > 0 or content_length is None)
        whole = None
        if with_body and body_length == length and length <= WHOLE_BODY_MAX:  # a small file, all here
            whole, with_body = await request.body(), False
        checksum = parse_checksum(upload_checksum)
        state = await services.uploads.create(
            principal, workspace, name, length, upload_metadata, whole, checksum if whole else None
        )
        location = str(request.url_for("upload_offset", upload_id=state.id).path)
        if with_body and length:  # creation-with-upload: the first chunk streams like a PATCH
            state = await services.uploads.append(
                principal, state.id, 0, request.stream(), checksum, body_length or None
            )
    except ServiceError as exc:
        return _tus_error(exc)
    except ClientDisconnect:
        return Response(status_code=status.HTTP_400_BAD_REQUEST)  # nobody is listening any more
    headers = _state_headers(state)
    headers["Location"] = location
    return Response(status_code=status.HTTP_201_CREATED, headers=headers)


@router.head("/api/v1/uploads/{upload_id}", name="upload_offset", responses=_problems(404, 410, 412))
async def upload_offset(
    upload_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    tus_resumable: Annotated[str | None, Header()] = None,
) -> Response:
    """How many bytes the server holds (fsync'd): resume from there."""
    if (refused := _check_version(tus_resumable)) is not None:
        return refused
    try:
        state = await services.uploads.state(principal, upload_id)
    except ServiceError as exc:
        return Response(status_code=exc.status, headers=TUS_HEADERS)  # HEAD answers carry no body
    return Response(status_code=status.HTTP_200_OK, headers=_state_headers(state))


@router.patch(
    "/api/v1/uploads/{upload_id}",
    status_code=204,
    responses=_problems(404, 409, 412, 413, 415, 422, 423, 460, 507),
)
@body_limit(None)  # TUS chunks: streamed to disk, held to the upload's declared length
async def append(
    upload_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    upload_offset: Annotated[str | None, Header()] = None,
    upload_checksum: Annotated[str | None, Header()] = None,
    content_type: Annotated[str | None, Header()] = None,
    content_length: Annotated[str | None, Header()] = None,
    tus_resumable: Annotated[str | None, Header()] = None,
) -> Response:
    """Append the body at Upload-Offset. With Upload-Checksum, a chunk that does not match is discarded
    (460) and the offset stays where it was."""
    if (refused := _check_version(tus_resumable)) is not None:
        return refused
    if content_type != OFFSET_CONTENT_TYPE:
        return _tus_error(_unsupported(content_type))
    try:
        offset = _int_header("Upload-Offset", upload_offset, required=True)
        assert offset is not None
        state = await services.uploads.append(
            principal,
            upload_id,
            offset,
            request.stream(),
            parse_checksum(upload_checksum),
            _int_header("Content-Length", content_length, required=False),
        )
    except ServiceError as exc:
        return _tus_error(exc)
    except ClientDisconnect:
        return Response(status_code=status.HTTP_400_BAD_REQUEST)  # nobody is listening any more
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_state_headers(state))


@router.delete("/api/v1/uploads/{upload_id}", status_code=204, responses=_problems(404, 412, 423))
async def terminate(
    upload_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    tus_resumable: Annotated[str | None, Header()] = None,
) -> Response:
    """TUS termination: the upload and its bytes are removed."""
    if (refused := _check_version(tus_resumable)) is not None:
        return refused
    try:
        await services.uploads.terminate(principal, upload_id)
    except ServiceError as exc:
        return _tus_error(exc)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=TUS_HEADERS)


def _unsupported(content_type: str | None) -> ServiceError:
    return UnsupportedMediaType(
        f"PATCH bodies must be {OFFSET_CONTENT_TYPE}, not {content_type or 'missing'}"
    )
