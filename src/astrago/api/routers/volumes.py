"""Volumes of a workspace, their folders and their files (downloads: ranges for files, tar for folders)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Query, status
from fastapi.responses import Response, StreamingResponse

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.api.ranges import attachment, file_response
from astrago.services.volume_schemas import DirectoryOut, VolumeCreate, VolumeOut, VolumeUpdate
from astrago.storage.archive import tar_stream

router = APIRouter(prefix="/api/v1/workspaces/{workspace}/volumes", tags=["volumes"])

PathQuery = Annotated[str, Query(max_length=4096, description="a path inside the volume; / is its root")]


@router.post("", response_model=VolumeOut, status_code=status.HTTP_201_CREATED)
async def create_volume(
    workspace: str, body: VolumeCreate, services: ServicesDep, principal: PrincipalDep
) -> VolumeOut:
    return await services.volumes.create(principal, workspace, body)


@router.get("", response_model=list[VolumeOut])
async def list_volumes(workspace: str, services: ServicesDep, principal: PrincipalDep) -> list[VolumeOut]:
    return list(await services.volumes.list(principal, workspace))


@router.get("/{name}", response_model=VolumeOut)
async def get_volume(workspace: str, name: str, services: ServicesDep, principal: PrincipalDep) -> VolumeOut:
    """With the unfinished workloads that mount it and its unfinished uploads."""
    return await services.volumes.get(principal, workspace, name)


@router.patch("/{name}", response_model=VolumeOut)
async def update_volume(
    workspace: str, name: str, body: VolumeUpdate, services: ServicesDep, principal: PrincipalDep
) -> VolumeOut:
    """Rename it, change its description or its size limit."""
    return await services.volumes.update(principal, workspace, name, body)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_volume(workspace: str, name: str, services: ServicesDep, principal: PrincipalDep) -> None:
    """Refused (409, naming them) while unfinished workloads mount it."""
    await services.volumes.delete(principal, workspace, name)


@router.get("/{name}/files", response_model=DirectoryOut)
async def list_files(
    workspace: str, name: str, services: ServicesDep, principal: PrincipalDep, path: PathQuery = "/"
) -> DirectoryOut:
    return await services.volumes.list_dir(principal, workspace, name, path)


@router.get(
    "/{name}/download",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}, "application/x-tar": {}}},
        206: {"description": "the requested byte range of a file"},
        416: {
            "description": "the range starts past the end of the file",
            "content": {"application/problem+json": {}},
        },
    },
)
async def download(
    workspace: str,
    name: str,
    services: ServicesDep,
    principal: PrincipalDep,
    path: PathQuery,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """A file (with `Range` support, so a download can resume) or a folder as a tar stream."""
    volume, clean, kind = await services.volumes.readable(principal, workspace, name, path)
    if kind == "file":
        fd, info = await asyncio.to_thread(services.volumes.open_file, volume, clean)
        return file_response(fd, info, clean.rsplit("/", 1)[-1], range_header)
    top = clean.rsplit("/", 1)[-1] if clean else volume.slug
    stream = tar_stream(services.volumes.disk.files, volume.workspace_id, volume.id, clean, top)
    return StreamingResponse(
        stream,
        media_type="application/x-tar",
        headers={"Content-Disposition": attachment(f"{top}.tar")},
    )
