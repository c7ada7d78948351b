"""Volumes for local workloads.

Every mount sets `ASTRAGO_VOLUME_<SLUG>` to where the workload finds the volume. Where it finds it:
- a *relative* mount path (`ds:data`) is a symbolic link in the working directory to the volume's folder,
  and that folder is bound into the sandbox at its own host path (read-only for `:ro`);
- an *absolute* mount path (`ds:/data`, `ds:/data:ro`) is a bind mount at that path in the replica's own
  mount namespace (its bubblewrap sandbox), read-only for `:ro`.
Without a sandbox (single-user mode) a workload shares the server's file system: only relative,
read-write mounts can be honoured there, and the API refuses the others at submission
(`services.volumes.resolve_mounts`); the checks here repeat that for a spec that reaches the backend anyway.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from astrago.backends.base import BackendError, LaunchSpec, VolumeMount
from astrago.backends.local.sandbox import BindMount, bind_target_problem
from astrago.domain.volumes import env_name, local_mount_target_problem


@dataclass(frozen=True, slots=True)
class PreparedVolumes:
    env: dict[str, str]  # ASTRAGO_VOLUME_<SLUG> of each mount
    binds: tuple[BindMount, ...]  # for the sandbox (none without one)


def prepare_volumes(
    spec: LaunchSpec, working_dir: Path, *, sandboxed: bool, keep_visible: Sequence[Path] = ()
) -> PreparedVolumes:
    """Check every mount, create the links of relative ones in the working directory (idempotent), and
    return the variables and the sandbox's bind mounts. `keep_visible` are paths the sandbox needs to see
    as they are (the working directory, the interpreter): a mount may not cover them."""
    env: dict[str, str] = {}
    binds: list[BindMount] = []
    for mount in spec.volumes:
        host = Path(mount.host_path)
        if not host.is_dir():
            raise BackendError(f"the files of volume {mount.name!r} are missing ({host} is not a folder)")
        if mount.mount_path.startswith("/"):
            target = _absolute_target(mount, sandboxed, (working_dir, *keep_visible))
            binds.append(BindMount(host, target, read_only=mount.read_only))
            env[env_name(mount.slug)] = str(target)
            continue
        if mount.read_only and not sandboxed:
            raise BackendError(
                f"volume {mount.name!r} asks for a read-only mount, which local workloads get only inside "
                "a sandbox; this server runs them without one"
            )
        link = _link(mount, host, working_dir)
        binds.append(BindMount(host, host, read_only=mount.read_only))  # where the link points
        env[env_name(mount.slug)] = str(link)
    return PreparedVolumes(env=env, binds=tuple(binds) if sandboxed else ())


def _absolute_target(mount: VolumeMount, sandboxed: bool, keep_visible: Sequence[Path]) -> Path:
    if not sandboxed:
        raise BackendError(
            f"volume {mount.name!r} asks for {mount.mount_path}, which local workloads get only inside a "
            "sandbox; this server runs them without one, so mount it at a relative path"
        )
    target = Path(mount.mount_path)
    problem = local_mount_target_problem(mount.mount_path) or bind_target_problem(target)
    if problem is None:
        for needed in keep_visible:
            real = Path(os.path.realpath(needed))
            if needed.is_relative_to(target) or real.is_relative_to(target):
                problem = f"it would cover {needed}, which the workload's sandbox needs"
                break
    if problem is not None:
        raise BackendError(f"cannot mount volume {mount.name!r} at {mount.mount_path}: {problem}")
    return target


def _link(mount: VolumeMount, host: Path, working_dir: Path) -> Path:
    link = working_dir / mount.mount_path
    if link.is_symlink() and os.readlink(link) == str(host):
        return link  # made by an earlier start of the same workload
    if link.exists() or link.is_symlink():
        raise BackendError(f"cannot mount volume {mount.name!r} at {mount.mount_path}: {link} already exists")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(host, target_is_directory=True)
    return link
