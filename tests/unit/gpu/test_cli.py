"""`astrago gpu ls` and `astrago gpu-exporter` on the project's fixtures (replay source, no GPU here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from astrago.cli.errors import CliError
from astrago.cli.main import app
from tests.unit.gpu.proc_tree import FakeProc, systemd_containerd

UID = "12345678-1234-1234-1234-123456789abc"


@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    proc = FakeProc(tmp_path / "proc")
    proc.add(1001, ["python", "train.py"], systemd_containerd(UID, "ab" * 32))
    return tmp_path / "proc"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def _cli_error(args: list[str]) -> CliError:
    """`main()` prints a CliError without a traceback; invoking the app directly hands it to the test."""
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, CliError), result.output
    return result.exception


def test_ls_json_lists_devices_mig_and_processes(gpu_fixtures: Path, proc_root: Path) -> None:
    code, out = _run(
        "gpu",
        "ls",
        "--source",
        f"replay:{gpu_fixtures / 'capture'}",
        "--state",
        "busy",
        "--json",
        "--proc-root",
        str(proc_root),
    )
    assert code == 0, out
    data = json.loads(out)
    assert [d["model"] for d in data["devices"]] == ["A100-SXM4-80GB", "A100-SXM4-80GB"]
    assert data["devices"][1]["mig_devices"][0]["profile"] == "3g.40gb"
    by_pid = {p["pid"]: p for p in data["processes"]}
    assert by_pid[1001]["pod_uid"] == UID
    assert by_pid[1001]["command"] == "python train.py"
    assert by_pid[2001]["mig_profile"] == "3g.40gb"
    assert by_pid[2001]["sm_utilization_percent"] is None


def test_ls_table(gpu_fixtures: Path, proc_root: Path) -> None:
    code, out = _run(
        "gpu", "ls", "--source", f"replay:{gpu_fixtures / 'two-gpus-mig.xml'}", "--proc-root", str(proc_root)
    )
    assert code == 0, out
    assert "Processes" in out
    assert "2001" in out
    assert f"uid {UID}" in out  # no cluster configured: the pod is named by its UID


def test_exporter_once_prints_the_exposition(gpu_fixtures: Path, proc_root: Path) -> None:
    code, out = _run(
        "gpu-exporter",
        "--source",
        f"replay:{gpu_fixtures / 'two-gpus-mig.xml'}",
        "--once",
        "--proc-root",
        str(proc_root),
    )
    assert code == 0, out
    assert "gpu_process_info{" in out
    assert "gpu_total_sessions 3\n" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gpu", "ls", "--source", "replay:/nonexistent.xml"], "does not exist"),
        (["gpu", "ls", "--source", "dcgm"], "unknown GPU source"),
        (["gpu-exporter", "--interval", "0"], "--interval"),
        (["gpu-exporter", "--listen", "nowhere"], "HOST:PORT"),
        (["gpu-exporter", "--textfile-dir", "/nonexistent/dir"], "not a directory"),
        (["gpu-exporter", "--kubeconfig", "/tmp/kubeconfig"], "--node"),
    ],
)
def test_bad_input_is_a_clear_usage_error(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    error = _cli_error(args)
    assert error.exit_code == 2
    assert message in error.message


def test_no_driver_is_an_error_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    error = _cli_error(["gpu", "ls"])
    assert error.exit_code == 1
    assert "no GPU source" in error.message
    assert error.hint is not None


def test_a_replay_is_not_matched_against_this_hosts_processes(gpu_fixtures: Path, tmp_path: Path) -> None:
    recording = tmp_path / "other-host.xml"
    recording.write_text(
        (gpu_fixtures / "two-gpus-mig.xml").read_text().replace("<pid>1001</pid>", "<pid>1</pid>")
    )
    code, out = _run("gpu", "ls", "--source", f"replay:{recording}", "--json")
    assert code == 0, out
    by_pid = {p["pid"]: p for p in json.loads(out)["processes"]}
    assert by_pid[1]["command"] == "python train.py --lr 0.1"  # the recording's, not this host's PID 1
