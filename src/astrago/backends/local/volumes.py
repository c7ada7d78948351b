"""Volumes for local workloads.

A local workload is a process of this machine. Without a private mount namespace it cannot see a volume
at an absolute path of its own choosing, so the local backend offers what it can honour and nothing
else: a *relative* mount path becomes a symbolic link in the working directory pointing at the volume's
directory, and `ASTRAGO_VOLUME_<SLUG>` always names where the volume is. Absolute and read-only mounts
are refused at submission (see `services.volumes.resolve_mounts`) with that advice, never ignored."""

from __future__ import annotations

import os
from pathlib import Path

from astrago.backends.base import BackendError, LaunchSpec
from astrago.domain.volumes import env_name


def local_bind_mounts_available() -> bool:
    """Whether local workloads get bind mounts (absolute and read-only mount paths). Not yet: they run
    without a mount namespace of their own."""
    return False


def prepare_volume_links(spec: LaunchSpec, working_dir: Path) -> dict[str, str]:
    """Create each volume's link in the working directory (idempotent) and return the variables that
    tell the workload where each volume is."""
    env: dict[str, str] = {}
    for mount in spec.volumes:
        host = Path(mount.host_path)
        if not host.is_dir():
            raise BackendError(f"the files of volume {mount.name!r} are missing ({host} is not a folder)")
        if mount.mount_path.startswith("/") or mount.read_only:
            raise BackendError(
                f"volume {mount.name!r} asks for {mount.mount_path}"
                + (" read-only" if mount.read_only else "")
                + ", which local workloads cannot get; mount it at a relative path"
            )
        link = working_dir / mount.mount_path
        if link.is_symlink() and os.readlink(link) == str(host):
            pass  # made by an earlier start of the same workload
        elif link.exists() or link.is_symlink():
            raise BackendError(
                f"cannot mount volume {mount.name!r} at {mount.mount_path}: {link} already exists"
            )
        else:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(host, target_is_directory=True)
        env[env_name(mount.slug)] = str(link)
    return env
