"""The sandbox every local replica runs in: bubblewrap (`bwrap`) namespaces around the command.

What a sandboxed replica gets (see docs/security.md for what this does and does not isolate):
- its own PID namespace: it sees its own processes only, never the server's (so not its
  `/proc/<pid>/environ`) nor other workloads'; PID 1 is `sandbox_init.py`, and when the command ends
  the kernel kills whatever is left in the namespace;
- its own mount namespace: the host file system read-only, a private `/tmp` and `/var/tmp`, a minimal
  `/dev` plus only the NVIDIA device nodes of its GPUs, a fresh `/proc`; the platform's data dir (database,
  secrets, logs, run records, every workload's working directory), the database file, the config file and
  the TLS files covered by empty tmpfs (or `/dev/null` for a file), so they do not exist for the job; then its
  own working directory and the bind mounts of its spec, at their paths (read-only where the spec says so);
- a root of its own: a tmpfs holding each top-level entry of the host's `/` (bound read-only, links as
  links), made read-only once built. So a bind may target a new top-level folder (a volume at `/data`),
  which bubblewrap creates in that root; the job can create nothing there itself;
- its own IPC namespace; the host network (ports are handed over in the environment);
- when the server runs as root, an unprivileged uid/gid with no supplementary groups and no capabilities;
- `no_new_privs` (set by bubblewrap), so set-uid programs cannot raise its privileges.

Process tree: `runner` (outside, own session) → `bwrap` (outside; dies with the runner through
`--die-with-parent`, and so does the whole sandbox) → `sandbox_init.py` (PID 1 inside) → the command.
The runner, not the server, is bubblewrap's parent, so a restart of the server never kills a job
(`--die-with-parent` fires only when the runner itself dies, and then nothing should keep the GPUs).

Where no sandbox can be created (bwrap missing, or it fails a probe at start), `detect_sandbox` says why,
and the server runs in single-user mode (see `IsolationStatus`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from astrago.backends.local import sandbox_init
from astrago.domain.isolation import IsolationMode, IsolationStatus

PRIVATE_TMP = (Path("/tmp"), Path("/var/tmp"))  # empty tmpfs in every sandbox
STATUS_FD_PLACEHOLDER = "{status_fd}"  # the runner substitutes the fds of its pipes for these two
REPORT_FD_PLACEHOLDER = "{report_fd}"
_INIT_PATH = Path(sandbox_init.__file__)
_PROBE_TIMEOUT_S = 15.0
# Device nodes every CUDA process needs besides its GPUs' own /dev/nvidiaN (those that exist are given).
NVIDIA_CONTROL_DEVICES = (
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
)
HOW_TO_ENABLE = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; it needs unprivileged user "
    "namespaces when the server does not run as root) and restart the server, or point the setting "
    "`sandbox_bwrap` (ASTRAGO_SANDBOX_BWRAP) at a working bwrap"
)


@dataclass(frozen=True, slots=True)
class BindMount:
    """A host path made visible inside the sandbox at `target` (e.g. a volume at /data)."""

    source: Path
    target: Path
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class SandboxUser:
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """Everything one replica's sandbox is made of.

    `working_dir` is bound read-write at its own path and is where the command starts. `binds` come after
    everything else, so they may sit inside hidden paths (the volumes under the data dir) or under a
    `tmpfs` of the spec; a bind target must exist on the host, lie under a tmpfs, or lie under a top-level
    folder the host does not have (see `bind_target_problem`): the host's folders are read-only, so
    nothing can be created inside them. `gpu_devices` are GPU minor numbers (`/dev/nvidiaN`); a
    replica without GPUs gets no NVIDIA device node at all. `shared_shm` replaces the sandbox's private
    /dev/shm (the replicas of one workload share one, as NCCL needs). `env` is the command's whole
    environment: nothing of the server's own reaches it."""

    working_dir: Path
    env: Mapping[str, str]
    binds: tuple[BindMount, ...] = ()
    tmpfs: tuple[Path, ...] = ()
    gpu_devices: tuple[int, ...] = ()
    user: SandboxUser | None = None
    shared_shm: Path | None = None


@dataclass(frozen=True, slots=True)
class SandboxCommand:
    """A command line, its whole environment, and (outside a sandbox only) where it starts. For a launch,
    `argv` holds the runner's fd placeholders."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: str | None = None


@dataclass(frozen=True, slots=True)
class Sandbox:
    """A working bubblewrap and the host paths every sandbox hides."""

    bwrap: Path
    hidden: tuple[Path, ...]
    as_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    dev_dir: Path = Path("/dev")
    host_root: Path = Path("/")  # whose top-level entries make the sandbox's root (a test points elsewhere)

    def command(self, spec: SandboxSpec, argv: Sequence[str]) -> SandboxCommand:
        """The bwrap invocation that runs `argv` in the sandbox `spec` describes."""
        argv = (*self._bwrap_args(spec), *self._init_args(spec), *argv)
        return SandboxCommand(argv=tuple(argv), env=dict(spec.env))

    def probe_argv(self) -> list[str]:
        spec = SandboxSpec(working_dir=Path("/"), env={})
        args = [a for a in self._bwrap_args(spec) if a not in ("--json-status-fd", STATUS_FD_PLACEHOLDER)]
        return [*args, "true"]

    def enter_argv(
        self, sandbox_pid: int, spec: SandboxSpec, argv: Sequence[str], *, cwd: Path | None = None
    ) -> list[str]:
        """A second process inside a running replica's sandbox (for `astrago exec`): its PID, mount and IPC
        namespaces, as its uid/gid, with no_new_privs, started in `cwd` (default: its working directory).
        Run it with `spec.env` as its whole environment. Needs root, or the server's uid when the sandbox was
        created without root (then it also enters the sandbox's user namespace)."""
        # A `--wd=DIR` would be opened before entering the mount namespace (the host's path); plain `--wd`
        # takes the sandbox init's working directory, which is the replica's.
        enter = ["nsenter", f"--target={sandbox_pid}", "--mount", "--pid", "--ipc", "--wd"]
        if not self.as_root:
            enter += ["--user", "--preserve-credentials"]
        drop = ["setpriv", "--no-new-privs"]
        if spec.user is not None:
            drop += [f"--reuid={spec.user.uid}", f"--regid={spec.user.gid}", "--clear-groups"]
        if cwd is not None and cwd != spec.working_dir:
            drop += ["--", "env", f"--chdir={cwd}"]
        return [*enter, "--", *drop, "--", *argv]

    def _bwrap_args(self, spec: SandboxSpec) -> list[str]:
        args = [
            str(self.bwrap),
            "--die-with-parent",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-cgroup-try",
            "--as-pid-1",
            "--json-status-fd",
            STATUS_FD_PLACEHOLDER,
            *_host_root(self.host_root),
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/var/tmp",
        ]
        for path in self.hidden:
            args += _hide(path)
        for minor in spec.gpu_devices:
            args += _device(self.dev_dir / f"nvidia{minor}")
        if spec.gpu_devices:
            for control in NVIDIA_CONTROL_DEVICES:
                args += _device(self.dev_dir / Path(control).name)
            caps = self.dev_dir / "nvidia-caps"  # MIG access nodes
            if caps.is_dir():
                args += ["--dev-bind", str(caps), "/dev/nvidia-caps"]
        if spec.shared_shm is not None:
            args += ["--bind", str(spec.shared_shm), "/dev/shm"]
        for path in spec.tmpfs:
            args += ["--tmpfs", str(path)]
        tmpfs_roots = [Path("/tmp"), Path("/var/tmp"), *(p for p in self.hidden if p.is_dir()), *spec.tmpfs]
        binds = (BindMount(spec.working_dir, spec.working_dir), *spec.binds)
        for bind in binds:
            args += _traversable_parents(bind.target, tmpfs_roots, self.host_root)
            args += ["--ro-bind" if bind.read_only else "--bind", str(bind.source), str(bind.target)]
        # the root tmpfs now holds every folder it needs: nothing may be added to it from inside
        args += ["--remount-ro", "/", "--chdir", str(spec.working_dir)]
        if self.as_root and spec.user is not None:
            # bubblewrap drops every capability of a root sandbox; its init needs these two to become the
            # workload's uid, and loses them with that change.
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        return args

    def _init_args(self, spec: SandboxSpec) -> list[str]:
        args = ["--", sys.executable, "-I", "-S", str(_INIT_PATH), "--report-fd", REPORT_FD_PLACEHOLDER]
        if spec.user is not None:
            args += ["--uid", str(spec.user.uid), "--gid", str(spec.user.gid)]
        return [*args, "--"]


@dataclass(frozen=True, slots=True)
class SandboxUnavailable:
    reason: str


def _hide(path: Path) -> list[str]:
    if path.is_dir():
        return ["--tmpfs", str(path)]
    if path.exists():
        return ["--ro-bind", "/dev/null", str(path)]
    return []  # nothing there yet; a path created later under a hidden directory is hidden with it


def _traversable_parents(target: Path, tmpfs_roots: Sequence[Path], host_root: Path) -> list[str]:
    """bubblewrap creates a bind target's missing parents 0700, so an unprivileged job could not reach
    its own working directory inside a hidden directory (or a volume at /data/train) by path: create them
    0755 first."""
    args: list[str] = []
    for parent in reversed(target.parents):
        in_tmpfs = any(parent.is_relative_to(root) and parent != root for root in tmpfs_roots)
        if in_tmpfs or _in_new_top_level(parent, host_root):
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _in_new_top_level(path: Path, host_root: Path) -> bool:
    """Whether `path` lies in a top-level folder the host does not have (one bubblewrap makes in the
    sandbox's root tmpfs)."""
    parts = path.parts
    return len(parts) > 1 and not os.path.lexists(host_root / parts[1])


def _host_root(host_root: Path) -> list[str]:
    """The host's top-level entries, each at its own place in the sandbox's root tmpfs: folders and files
    bound read-only, symbolic links (`/bin -> usr/bin`) recreated as links. /dev, /proc, /tmp and /var/tmp
    get their own mounts after this."""
    args: list[str] = []
    with os.scandir(host_root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            target = f"/{entry.name}"
            if entry.name in ("dev", "proc", "tmp"):
                continue  # bubblewrap makes their mount points when it mounts them
            if entry.is_symlink():
                args += ["--symlink", os.readlink(entry.path), target]
            elif entry.is_dir() or entry.is_file():
                args += ["--ro-bind", entry.path, target]
            # sockets, fifos and device nodes at the top level are nobody's business inside
    return args


def bind_target_problem(target: Path, host_root: Path = Path("/")) -> str | None:
    """Why a bind mount at the absolute path `target` cannot be made in a sandbox, or None when it can:
    it must be a folder of the host, lie in the sandbox's private /tmp or /var/tmp, or lie in a top-level
    folder the host does not have (created in the sandbox's root). Inside an existing host folder nothing
    can be created, because the sandbox shows the host read-only."""
    if any(target.is_relative_to(private) and target != private for private in PRIVATE_TMP):
        return None
    host = host_root / target.relative_to("/")
    if host.is_dir() and not host.is_symlink():
        return None
    if _in_new_top_level(target, host_root):
        return None
    if host.exists() or host.is_symlink():
        return f"{target} exists on this machine and is not a folder"
    return (
        f"{target} would have to be created inside {target.parent}, a folder of this machine that "
        "workloads see read-only"
    )


def _device(path: Path) -> list[str]:
    return ["--dev-bind", str(path), str(path)] if path.exists() else []


def hidden_paths(candidates: Iterable[Path]) -> tuple[Path, ...]:
    """Each candidate once, resolved; a path under another hidden directory is already hidden with it."""
    resolved = sorted({Path(os.path.realpath(path)) for path in candidates}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in resolved:
        if not any(path.is_relative_to(parent) for parent in kept):
            kept.append(path)
    return tuple(kept)


def detect_sandbox(bwrap: str, hidden: Iterable[Path]) -> Sandbox | SandboxUnavailable:
    """A Sandbox when `bwrap` exists and can create one here (a real probe run), else why not."""
    found = shutil.which(bwrap)
    if found is None:
        return SandboxUnavailable(f"bubblewrap ({bwrap!r}) is not installed")
    sandbox = Sandbox(bwrap=Path(found), hidden=hidden_paths(hidden))
    try:
        probe = subprocess.run(
            sandbox.probe_argv(),
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxUnavailable(f"bubblewrap ({found}) cannot run: {exc}")
    if probe.returncode != 0:
        error = probe.stderr.strip() or f"exit code {probe.returncode}"
        return SandboxUnavailable(f"bubblewrap ({found}) cannot create a sandbox here: {error}")
    return sandbox


__all__ = [
    "BindMount",
    "IsolationMode",
    "IsolationStatus",
    "Sandbox",
    "SandboxCommand",
    "SandboxSpec",
    "SandboxUnavailable",
    "SandboxUser",
    "bind_target_problem",
    "detect_sandbox",
    "hidden_paths",
]
