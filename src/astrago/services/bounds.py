"""The bounds every request field is held to, as annotated types the API's schemas share (so the
OpenAPI document states them): finite numbers within what the database stores, strings without NUL
bytes (no process argument, file name or PostgreSQL text can hold one) and of a bounded size, names and
paths that cannot escape where they point."""

from __future__ import annotations

import math
import posixpath
from typing import Annotated

from pydantic import AfterValidator, Field

from astrago.domain.limits import MAX_EXEC_STRING_BYTES, MAX_PATH_BYTES

INT64_MAX = 2**63 - 1
NO_NUL = r"^[^\x00]*$"
# A GPU model as the driver reports it ("NVIDIA A100-SXM4-80GB") or as simulated ("A100-80GB").
_GPU_MODEL = r"[A-Za-z0-9][A-Za-z0-9 ._+()-]{0,63}"
GPU_MODEL_PATTERN = rf"^{_GPU_MODEL}$"
GPU_MODELS_PATTERN = rf"^{_GPU_MODEL}(\|{_GPU_MODEL}){{0,15}}$"  # 'A|B': any of several
_IMAGE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$"
_VOLUME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?:/[^\x00]*$"
_ABSOLUTE_PATTERN = r"^/[^\x00]*$"
# What each pattern means, for refusals a person can act on.
PATTERN_MEANINGS = {
    NO_NUL: "no NUL bytes",
    GPU_MODEL_PATTERN: "a GPU model name: letters, digits, spaces and . _ + ( ) -, at most 64 characters",
    GPU_MODELS_PATTERN: "a GPU model name, or 'A|B' for any of several: letters, digits, spaces and "
    ". _ + ( ) -, at most 64 characters each",
    _IMAGE_PATTERN: "an image reference such as registry/name:tag",
    _VOLUME_PATTERN: "VOLUME:/absolute/mount/path, without NUL bytes",
    _ABSOLUTE_PATTERN: "an absolute path, without NUL bytes",
}
MAX_RUNTIME_S = 366 * 86400
MAX_OPTIONS = 64


def _clean_absolute_path(value: str) -> str:
    if ".." in value.split("/"):
        raise ValueError(f"{value!r} must not contain '..'")
    if len(value.encode()) > MAX_PATH_BYTES:
        raise ValueError(f"a path may be at most {MAX_PATH_BYTES} bytes")
    return posixpath.normpath(value)


def _clean_volume_mount(value: str) -> str:
    name, _, path = value.partition(":")
    return f"{name}:{_clean_absolute_path(path)}"


def finite(value: float, field: str) -> float:
    """JSON readers accept 1e309 (as infinity), `Infinity` and `NaN`; no amount may be one of them."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{field} must be a finite number, not {value}")
    return value


Argument = Annotated[str, Field(max_length=MAX_EXEC_STRING_BYTES, pattern=NO_NUL)]
ShortText = Annotated[str, Field(max_length=128, pattern=NO_NUL)]
Text = Annotated[str, Field(max_length=1024, pattern=NO_NUL)]
Amount = Annotated[str, Field(max_length=32, pattern=NO_NUL, description="an amount with its unit")]
ImageRef = Annotated[str, Field(min_length=1, max_length=1024, pattern=_IMAGE_PATTERN)]
OptionName = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
AbsolutePath = Annotated[
    str, Field(max_length=MAX_PATH_BYTES, pattern=_ABSOLUTE_PATTERN), AfterValidator(_clean_absolute_path)
]
VolumeMount = Annotated[
    str,
    Field(max_length=MAX_PATH_BYTES + 64, pattern=_VOLUME_PATTERN),
    AfterValidator(_clean_volume_mount),
]
GpuModel = Annotated[str, Field(pattern=GPU_MODEL_PATTERN)]
GpuModels = Annotated[str, Field(max_length=1024, pattern=GPU_MODELS_PATTERN)]
