"""A fake `/proc` tree on disk for the pid → container → pod tests (the real /proc has no GPU pods)."""

from __future__ import annotations

from pathlib import Path


class FakeProc:
    def __init__(self, root: Path) -> None:
        self.root = root

    def add(
        self, pid: int, cmdline: list[str], cgroup: str, start_time: int = 1000, comm: str = "python"
    ) -> None:
        base = self.root / str(pid)
        base.mkdir(parents=True, exist_ok=True)
        # field 2 may hold spaces and parentheses; start time is field 22
        fields = ["S", "1", str(pid), str(pid), "0", "-1", "4194560", *["0"] * 12, str(start_time), "0", "0"]
        (base / "stat").write_text(f"{pid} ({comm}) {' '.join(fields)}\n")
        (base / "cmdline").write_bytes(b"\0".join(arg.encode() for arg in cmdline) + b"\0")
        (base / "cgroup").write_text(cgroup)

    def remove(self, pid: int) -> None:
        for file in (self.root / str(pid)).iterdir():
            file.unlink()
        (self.root / str(pid)).rmdir()


def systemd_containerd(pod_uid: str, container_id: str, qos: str = "burstable") -> str:
    escaped = pod_uid.replace("-", "_")
    return (
        f"0::/kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{escaped}.slice/"
        f"cri-containerd-{container_id}.scope\n"
    )
