"""Volumes as users name and mount them: names, slugs, sizes, paths inside a volume, mount specs.

Pure functions. A volume's *name* is what people read and type (spaces and any language allowed); its
*slug* is the ASCII form used where only a few characters are safe (the `ASTRAGO_VOLUME_<SLUG>`
variable). Files of a volume live in a directory named after the volume's id, so a rename never moves
data and a name never becomes part of a host path."""

from __future__ import annotations

import enum
import posixpath
import re
import unicodedata
from dataclasses import dataclass

MAX_NAME_LENGTH = 128
MAX_PATH_LENGTH = 4096
MAX_PATH_PART_BYTES = 255  # NAME_MAX on Linux file systems
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?|[KMGTP]?B?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "p": 1000**5,
    "pb": 1000**5,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
    "ti": 1024**4,
    "pi": 1024**5,
}
_FORBIDDEN_NAME_CHARS = set(':/\\"')


class VolumeKind(enum.StrEnum):
    DATASET = "dataset"
    MODEL = "model"
    CODE = "code"
    SCRATCH = "scratch"


class VolumeInputError(ValueError):
    """A name, size, path or mount spec that cannot be used; the message says why."""


def normalise_name(name: str) -> str:
    """The stored form of a volume name: NFC, trimmed. Refuses what cannot be typed in `NAME:PATH`."""
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise VolumeInputError("a volume name cannot be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise VolumeInputError(f"a volume name has at most {MAX_NAME_LENGTH} characters")
    bad = sorted({c for c in cleaned if c in _FORBIDDEN_NAME_CHARS or not c.isprintable()})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise VolumeInputError(
            f"a volume name cannot hold {shown} (`:` separates it from a path in NAME:PATH)"
        )
    return cleaned


def slug_of(name: str) -> str:
    """`Korean 데이터 v2` → `korean-v2`; empty when nothing ASCII is left (the caller adds the id)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:48].strip("-")


def unique_slug(name: str, volume_id: str, taken: set[str]) -> str:
    """A slug no other volume of the workspace uses; the id's first characters settle clashes."""
    base = slug_of(name)
    if base and base not in taken:
        return base
    return f"{base}-{volume_id[:8]}" if base else f"v-{volume_id[:8]}"


def env_name(slug: str) -> str:
    """The variable that tells a workload where a mounted volume is: `ASTRAGO_VOLUME_KOREAN_V2`."""
    return "ASTRAGO_VOLUME_" + slug.upper().replace("-", "_")


def parse_size_bytes(value: str | int) -> int:
    """`10Gi` (binary), `500G` / `500GB` (decimal), or a number of bytes."""
    if isinstance(value, bool):
        raise VolumeInputError(f"a size must be e.g. 10Gi or 500G, not {value!r}")
    if isinstance(value, int):
        amount = value
    else:
        match = _SIZE_RE.match(value)
        if not match:
            raise VolumeInputError(f"cannot read size {value!r}; use e.g. 500Mi, 10Gi, 2T or bytes")
        amount = round(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()])
    if amount < 0:
        raise VolumeInputError(f"a size cannot be negative: {value}")
    return amount


def format_bytes(amount: int) -> str:
    """1536 → `1.5 KiB`: what the CLI and messages show."""
    size = float(amount)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def relative_path(path: str, *, allow_root: bool = False) -> str:
    """A path inside a volume, normalised to `a/b/c` (no leading slash). `/train/x` and `train/x` are the
    same place; `..`, NUL bytes, over-long parts and (unless `allow_root`) the root itself are refused.
    Symbolic links are the file system's business: see `services.volume_files.resolve_inside`."""
    if "\x00" in path:
        raise VolumeInputError("a path cannot hold a NUL byte")
    if len(path) > MAX_PATH_LENGTH:
        raise VolumeInputError(f"a path has at most {MAX_PATH_LENGTH} characters")
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise VolumeInputError(f"path {path!r} leaves the volume (`..` is not allowed)")
    for part in parts:
        if len(part.encode()) > MAX_PATH_PART_BYTES:
            raise VolumeInputError(f"path part {part[:40]!r}... is longer than {MAX_PATH_PART_BYTES} bytes")
    if not parts and not allow_root:
        raise VolumeInputError("give a file path inside the volume, not its root")
    return "/".join(unicodedata.normalize("NFC", part) for part in parts)


@dataclass(frozen=True, slots=True)
class MountRequest:
    """`NAME:/mount/path[:ro|:rw]` as typed after `--volume`."""

    volume: str
    mount_path: str
    read_only: bool

    @property
    def text(self) -> str:
        return f"{self.volume}:{self.mount_path}" + (":ro" if self.read_only else "")


def parse_mount(text: str) -> MountRequest:
    name, sep, rest = text.partition(":")
    if not sep or not rest:
        raise VolumeInputError(f"cannot read volume mount {text!r}; use NAME:/mount/path or NAME:/path:ro")
    mount_path, mode = rest, "rw"
    head, sep, tail = rest.rpartition(":")
    if sep and tail in ("ro", "rw"):
        mount_path, mode = head, tail
    if ":" in mount_path:
        raise VolumeInputError(f"mount path {mount_path!r} cannot hold `:`; the last part must be ro or rw")
    if "\x00" in mount_path or not mount_path.strip():
        raise VolumeInputError(f"volume mount {text!r} needs a mount path")
    if ".." in mount_path.split("/"):
        raise VolumeInputError(f"mount path {mount_path!r} cannot hold `..`")
    normalised = posixpath.normpath(mount_path)
    if normalised == "/":
        raise VolumeInputError("a volume cannot be mounted over /")
    return MountRequest(volume=normalise_name(name), mount_path=normalised, read_only=mode == "ro")


# Folders a local workload's volume may neither cover nor sit in: the kernel's (a fresh /proc, /dev of the
# sandbox, the host's /sys) and those holding the programs, libraries and configuration that the workload
# and its sandbox's init need to start. Shadowing one would only break the workload itself (its mounts
# live in its own namespace, and it cannot gain privileges there), but it would fail in confusing ways.
LOCAL_SYSTEM_DIRS = (
    "/proc", "/dev", "/sys", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/boot",
)  # fmt: skip


def local_mount_target_problem(mount_path: str) -> str | None:
    """Why a local workload cannot have a volume at the absolute `mount_path` (normalised, as
    `parse_mount` returns it, so never `/`), or None: not at or inside a system folder."""
    for system in LOCAL_SYSTEM_DIRS:
        if mount_path == system:
            where = "is"
        elif mount_path.startswith(system + "/"):
            where = f"lies inside {system},"
        else:
            continue
        return f"{mount_path} {where} a system folder that workloads need as it is"
    return None
