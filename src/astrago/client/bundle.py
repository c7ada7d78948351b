"""Packing the directory a user runs `astrago run` in, as the workload's code.

What is left out: `.git/`, and whatever the directory's `.gitignore` and `.astragoignore` exclude (git's
pattern rules, via `pathspec`; `.astragoignore` is read after `.gitignore`, so `!pattern` there brings
back what git ignores, e.g. a small data file). Symbolic links to files are packed as the files they
point to; links to directories are left out (they may point anywhere, even back into the tree), and the
packer says so. A bundle past the size limit is refused before anything is uploaded, naming the largest
entries to leave out."""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

IGNORE_FILES = (".gitignore", ".astragoignore")
ALWAYS_LEFT_OUT = (".git/",)
DEFAULT_LIMIT_MIB = 100


class BundleTooLarge(ValueError):
    pass


@dataclass
class PackedDirectory:
    archive: Path
    files: int
    size_bytes: int  # of the compressed archive
    skipped_links: list[str] = field(default_factory=list)


def _ignore_spec(root: Path) -> pathspec.PathSpec:
    lines = list(ALWAYS_LEFT_OUT)
    for name in IGNORE_FILES:
        path = root / name
        if path.is_file():
            lines.extend(path.read_text(errors="replace").splitlines())
    return pathspec.GitIgnoreSpec.from_lines(lines)


def included_files(root: Path) -> tuple[list[str], list[str]]:
    """Relative paths of the files to pack (sorted), and the directory links left out."""
    spec = _ignore_spec(root)
    files: list[str] = []
    skipped: list[str] = []
    for current, dirs, names in os.walk(root):
        base = Path(current).relative_to(root)
        kept = []
        for name in sorted(dirs):
            relative = (base / name).as_posix()
            if spec.match_file(relative + "/"):
                continue
            if (Path(current) / name).is_symlink():
                skipped.append(relative)
                continue
            kept.append(name)
        dirs[:] = kept
        for name in sorted(names):
            relative = (base / name).as_posix()
            if not spec.match_file(relative) and (Path(current) / name).is_file():
                files.append(relative)
    return sorted(files), skipped


def pack_directory(root: Path, limit_mib: int = DEFAULT_LIMIT_MIB) -> PackedDirectory:
    """A gzip'd tar of `root` in a temporary file (the caller deletes it); BundleTooLarge past the limit."""
    limit = limit_mib * 1024 * 1024
    files, skipped = included_files(root)
    sizes = {name: (root / name).stat().st_size for name in files}
    # Compression rarely gains more than 4x on code and never on data: refuse before packing gigabytes.
    if sum(sizes.values()) > 4 * limit:
        raise BundleTooLarge(_too_large(root, sizes, limit_mib))
    handle, name = tempfile.mkstemp(prefix="astrago-code-", suffix=".tar.gz")
    os.close(handle)
    archive = Path(name)
    try:
        with tarfile.open(archive, "w:gz", compresslevel=6, dereference=True) as tar:
            for relative in files:
                tar.add(root / relative, arcname=relative, recursive=False, filter=_anonymous)
        size = archive.stat().st_size
        if size > limit:
            raise BundleTooLarge(_too_large(root, sizes, limit_mib))
    except BaseException:
        archive.unlink(missing_ok=True)
        raise
    return PackedDirectory(archive, len(files), size, skipped)


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Files as plain files of nobody in particular (the server unpacks them as its own user)."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode &= 0o755
    return info


def _too_large(root: Path, sizes: dict[str, int], limit_mib: int) -> str:
    by_entry: Counter[str] = Counter()
    for name, size in sizes.items():
        top = name.split("/", 1)[0] + ("/" if "/" in name else "")
        by_entry[top] += size
    largest = ", ".join(f"{entry} {_mib(size)}" for entry, size in by_entry.most_common(3))
    return (
        f"{root} holds {_mib(sum(sizes.values()))} to upload as the workload's code "
        f"(the limit is {limit_mib} MiB); "
        f"largest: {largest}. Leave data and build output out with .astragoignore (gitignore syntax), "
        "or run with --no-code or --workdir"
    )


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
