"""Request and response bodies of volumes, their files and their uploads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from astrago.domain.enums import WorkloadStatus
from astrago.domain.volumes import MAX_NAME_LENGTH, VolumeKind
from astrago.services.schemas import Strict

SizeIn = Annotated[int | str, Field(description="bytes, or e.g. 500Mi, 10Gi, 2T; -1: no limit of its own")]


class VolumeCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
    kind: VolumeKind = VolumeKind.DATASET
    size: SizeIn | None = Field(None, description="most bytes it may hold; none: the workspace's limit")
    description: Annotated[str, Field(max_length=512)] = ""


class VolumeUpdate(Strict):
    """Fields left out keep their value."""

    name: Annotated[str | None, Field(min_length=1, max_length=MAX_NAME_LENGTH)] = None
    description: Annotated[str | None, Field(max_length=512)] = None
    size: SizeIn | None = None


class VolumeUserOut(BaseModel):
    """A workload that mounts the volume and has not finished."""

    workload_id: str
    workload_name: str
    status: WorkloadStatus
    mount_path: str
    read_only: bool


class UploadOut(BaseModel):
    id: str
    path: str
    offset: int
    length: int
    created_by: str | None
    created_at: datetime
    expires_at: datetime


class VolumeOut(BaseModel):
    id: str
    workspace: str
    name: str
    slug: str
    env_var: str = Field(description="set in every workload that mounts it: where it is mounted")
    kind: VolumeKind
    size_limit: int | None = Field(description="bytes; null: only the workspace's storage limit applies")
    description: str
    used_bytes: int = Field(description="measured on disk")
    used_files: int
    reserved_bytes: int = Field(description="declared by unfinished uploads into it")
    created_by: str | None
    created_at: datetime
    mounted_by: list[VolumeUserOut] = Field(default_factory=list)
    uploads: list[UploadOut] = Field(default_factory=list)


class FileEntryOut(BaseModel):
    name: str
    type: str = Field(description="file | dir | symlink | other")
    size: int
    modified: datetime


class DirectoryOut(BaseModel):
    volume: str
    path: str
    entries: list[FileEntryOut]
