"""The bubblewrap command lines the sandbox builds, and how it detects that no sandbox can be made."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from astrago.backends.local.sandbox import (
    REPORT_FD_PLACEHOLDER,
    STATUS_FD_PLACEHOLDER,
    BindMount,
    Sandbox,
    SandboxSpec,
    SandboxUnavailable,
    SandboxUser,
    bind_target_problem,
    detect_sandbox,
    hidden_paths,
)


def pairs(argv: tuple[str, ...] | list[str], option: str) -> list[tuple[str, ...]]:
    """The arguments following each occurrence of `option` (two for binds, one for --tmpfs/--dir)."""
    width = 2 if option in ("--bind", "--ro-bind", "--dev-bind") else 1
    return [tuple(argv[i + 1 : i + 1 + width]) for i, arg in enumerate(argv) if arg == option]


@pytest.fixture
def dev(tmp_path: Path) -> Path:
    """A fake /dev with two GPUs and the NVIDIA control nodes."""
    directory = tmp_path / "dev"
    directory.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (directory / name).touch()
    return directory


def sandbox(tmp_path: Path, dev: Path, *, as_root: bool = True) -> Sandbox:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    database = tmp_path / "elsewhere.db"
    database.touch()
    return Sandbox(bwrap=Path("/usr/bin/bwrap"), hidden=(data, database), as_root=as_root, dev_dir=dev)


def test_hidden_paths_are_covered_before_the_working_dir_is_bound_back(tmp_path: Path, dev: Path) -> None:
    box = sandbox(tmp_path, dev)
    workdir = tmp_path / "data" / "workdirs" / "wl-1"
    spec = SandboxSpec(working_dir=workdir, env={"A": "1"}, user=SandboxUser(1_900_000_003, 1_900_000_003))

    command = box.command(spec, ["python", "train.py"])
    argv = list(command.argv)

    assert argv[0] == "/usr/bin/bwrap"
    for flag in ("--die-with-parent", "--unshare-pid", "--unshare-ipc", "--as-pid-1"):
        assert flag in argv
    assert "--unshare-net" not in argv  # the host network stays shared
    assert tuple(argv[argv.index("--json-status-fd") :][:2]) == ("--json-status-fd", STATUS_FD_PLACEHOLDER)
    assert pairs(argv, "--tmpfs")[:3] == [("/tmp",), ("/var/tmp",), (str(tmp_path / "data"),)]
    assert (("/dev/null", str(tmp_path / "elsewhere.db"))) in pairs(argv, "--ro-bind")
    # its own directory comes back, after the tmpfs over the data dir, with parents it may traverse
    assert argv.index(str(tmp_path / "data")) < argv.index("--bind")
    assert (str(workdir), str(workdir)) in pairs(argv, "--bind")
    made = [Path(d) for (d,) in pairs(argv, "--dir")]  # under /tmp and the data dir, both tmpfs here
    assert made[-1] == tmp_path / "data" / "workdirs"
    assert all(workdir.is_relative_to(d) for d in made)
    assert pairs(argv, "--perms") == [("0755",)] * len(made)
    assert argv[argv.index("--chdir") + 1] == str(workdir)
    # the init becomes the workspace's uid: it needs exactly these two capabilities for that
    assert pairs(argv, "--cap-add") == [("CAP_SETUID",), ("CAP_SETGID",)]
    init = argv[argv.index("--", 1) + 1 :]
    assert init[:4] == [sys.executable, "-I", "-S", init[3]]
    assert init[3].endswith("sandbox_init.py")
    assert init[4:] == [
        "--report-fd", REPORT_FD_PLACEHOLDER, "--uid", "1900000003", "--gid", "1900000003",
        "--", "python", "train.py",
    ]  # fmt: skip
    assert command.env == {"A": "1"}  # the environment travels as the process's, never on the command line
    assert "1" not in argv[: argv.index("--", 1)]


def test_only_the_given_gpus_device_nodes_are_visible(tmp_path: Path, dev: Path) -> None:
    box = sandbox(tmp_path, dev)
    with_gpu = box.command(SandboxSpec(working_dir=tmp_path, env={}, gpu_devices=(1,)), ["true"]).argv
    assert [p[0] for p in pairs(with_gpu, "--dev-bind")] == [
        str(dev / "nvidia1"),
        str(dev / "nvidiactl"),
        str(dev / "nvidia-uvm"),  # nvidia-uvm-tools and nvidia-modeset do not exist on this host
    ]
    cpu_only = box.command(SandboxSpec(working_dir=tmp_path, env={}), ["true"]).argv
    assert pairs(cpu_only, "--dev-bind") == []


def test_binds_shared_shm_and_tmpfs_of_the_spec(tmp_path: Path, dev: Path) -> None:
    volume = tmp_path / "data" / "volumes" / "v1"
    spec = SandboxSpec(
        working_dir=tmp_path / "code",
        env={},
        binds=(BindMount(volume, Path("/mnt/data")), BindMount(tmp_path / "ds", Path("/ds"), read_only=True)),
        tmpfs=(Path("/mnt"),),
        shared_shm=tmp_path / "shm",
    )
    argv = sandbox(tmp_path, dev).command(spec, ["true"]).argv
    assert (str(volume), "/mnt/data") in pairs(argv, "--bind")
    assert (str(tmp_path / "ds"), "/ds") in pairs(argv, "--ro-bind")
    assert (str(tmp_path / "shm"), "/dev/shm") in pairs(argv, "--bind")
    assert ("/mnt",) in pairs(argv, "--tmpfs")


def test_a_non_root_sandbox_keeps_the_servers_uid(tmp_path: Path, dev: Path) -> None:
    argv = sandbox(tmp_path, dev, as_root=False).command(SandboxSpec(tmp_path, {}), ["true"]).argv
    assert "--cap-add" not in argv
    assert "--uid" not in argv


def test_exec_enters_the_namespaces_as_the_workloads_uid(tmp_path: Path, dev: Path) -> None:
    spec = SandboxSpec(working_dir=tmp_path / "w", env={}, user=SandboxUser(1_900_000_001, 1_900_000_001))
    argv = sandbox(tmp_path, dev).enter_argv(4242, spec, ["bash", "-l"])
    assert argv == [
        "nsenter", "--target=4242", "--mount", "--pid", "--ipc", "--wd", "--",
        "setpriv", "--no-new-privs", "--reuid=1900000001", "--regid=1900000001", "--clear-groups", "--",
        "bash", "-l",
    ]  # fmt: skip
    elsewhere = sandbox(tmp_path, dev).enter_argv(4242, spec, ["ls"], cwd=Path("/tmp"))
    assert elsewhere[-5:] == ["--", "env", "--chdir=/tmp", "--", "ls"]
    unprivileged = sandbox(tmp_path, dev, as_root=False).enter_argv(7, SandboxSpec(tmp_path, {}), ["sh"])
    assert unprivileged[:8] == [
        "nsenter", "--target=7", "--mount", "--pid", "--ipc", "--wd", "--user", "--preserve-credentials",
    ]  # fmt: skip


def test_hidden_paths_are_resolved_and_nested_ones_dropped(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    found = hidden_paths([tmp_path / "data" / "astrago.db", tmp_path / "link", tmp_path / "data"])
    assert found == (tmp_path / "data",)


def test_no_sandbox_without_bubblewrap(tmp_path: Path) -> None:
    missing = detect_sandbox(str(tmp_path / "no-bwrap"), [])
    assert missing == SandboxUnavailable(f"bubblewrap ({str(tmp_path / 'no-bwrap')!r}) is not installed")
    failing = detect_sandbox("/bin/false", [])
    assert isinstance(failing, SandboxUnavailable)
    assert failing.reason == "bubblewrap (/bin/false) cannot create a sandbox here: exit code 1"


def test_a_working_bubblewrap_is_found() -> None:
    found = detect_sandbox("bwrap", [])
    if isinstance(found, SandboxUnavailable):
        pytest.fail(f"bubblewrap is required for the test suite (.ci/apt-packages.txt): {found.reason}")
    assert found.bwrap.name == "bwrap"


@pytest.fixture
def host_root(tmp_path: Path) -> Path:
    """A stand-in for the host's `/`: folders, a file, a merged-/usr link, and the mount points."""
    root = tmp_path / "host"
    for folder in ("usr/bin", "etc", "srv", "var/lib", "proc", "dev", "tmp"):
        (root / folder).mkdir(parents=True)
    (root / "bin").symlink_to("usr/bin")
    (root / "marker").touch()
    return root


def test_the_root_is_built_from_the_hosts_entries_and_sealed(
    tmp_path: Path, dev: Path, host_root: Path
) -> None:
    box = Sandbox(bwrap=Path("/usr/bin/bwrap"), hidden=(), dev_dir=dev, host_root=host_root)
    volume = tmp_path / "volume"
    spec = SandboxSpec(
        working_dir=Path("/tmp/work"),
        env={},
        binds=(BindMount(volume, Path("/data/train")), BindMount(volume, Path("/srv"), read_only=True)),
    )
    argv = box.command(spec, ["true"]).argv
    entries = {target for _, target in pairs(argv, "--ro-bind")}
    assert {"/etc", "/marker", "/srv", "/usr", "/var"} <= entries
    assert not {"/proc", "/dev", "/tmp"} & entries  # mounted afresh
    assert ("usr/bin",) in pairs(argv, "--symlink")  # a link stays a link
    assert argv[argv.index("--symlink") + 2] == "/bin"
    # /data is no folder of the host: made (traversable) in the sandbox's root, then the volume bound in it
    assert ("/data",) in pairs(argv, "--dir")
    assert argv.index("/data") < argv.index("/data/train")
    assert (str(volume), "/data/train") in pairs(argv, "--bind")
    assert (str(volume), "/srv") in pairs(argv, "--ro-bind")
    # the root is sealed after every mount point is made
    remount = argv.index("--remount-ro")
    assert argv[remount + 1] == "/"
    assert remount > argv.index("/data/train")


def test_where_a_bind_target_can_be_made(host_root: Path) -> None:
    def problem(path: str) -> str | None:
        return bind_target_problem(Path(path), host_root)

    assert problem("/srv") is None  # an existing folder
    assert problem("/data") is None
    assert problem("/data/a/b") is None
    assert problem("/tmp/x") is None
    assert problem("/var/tmp/x") is None
    inside = "inside /var/lib, a folder of this machine that workloads see read-only"
    assert inside in (problem("/var/lib/x") or "")
    assert "is not a folder" in (problem("/marker") or "")
    assert "is not a folder" in (problem("/bin") or "")  # a link is not bound over
