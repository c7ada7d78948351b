"""`astrago sim replay` end to end on a small native trace (real files, real engine)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from astrago.cli.errors import CliError
from astrago.cli.main import app

NODES = """
nodes:
  - name: gpu
    count: 2
    cpu: 32
    memory: 128Gi
    gpus: 4
    gpu_model: A100
"""

PODS = """
pods:
  - name: train
    count: 6
    gpus: 2
    arrival: 0
    duration: 600
    workspace: vision
  - name: notebook
    count: 4
    gpu_share: 0.5
    arrival: 60
    duration: 300
    workspace: nlp
"""


def write(tmp_path: Path) -> tuple[Path, Path]:
    nodes, pods = tmp_path / "nodes.yaml", tmp_path / "pods.yaml"
    nodes.write_text(NODES)
    pods.write_text(PODS)
    return nodes, pods


def test_replay_writes_a_report(tmp_path: Path) -> None:
    nodes, pods = write(tmp_path)
    out = tmp_path / "report.json"

    result = CliRunner().invoke(
        app,
        [
            "sim",
            "replay",
            "--nodes",
            str(nodes),
            "--pods",
            str(pods),
            "--policy",
            "bestfit",
            "--out",
            str(out),
        ],
    )

    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["pods_completed"] == 10
    assert report["queueing_delay_s"]["max"] >= 600  # 6 × 2 GPUs on 8: two jobs wait for the first batch
    assert set(report["per_team"]) == {"vision", "nlp"}
    assert "queueing delay" in result.output


def test_bad_queue_is_a_clear_error(tmp_path: Path) -> None:
    nodes, pods = write(tmp_path)

    result = CliRunner().invoke(
        app, ["sim", "replay", "--nodes", str(nodes), "--pods", str(pods), "--queue", "lifo"]
    )

    assert isinstance(result.exception, CliError)  # main() prints it as one line and exits with its code
    assert result.exception.exit_code == 2
    assert "unknown queue 'lifo'" in str(result.exception)
