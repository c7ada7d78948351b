"""Fill mode on a tiny synthetic trace, and the `astrago sim` commands around it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from astrago.cli.errors import CliError
from astrago.cli.main import app
from astrago.sim.fill import fill, gpu_demand_milli, inflate
from astrago.sim.traces import read_nodes, read_pods

TRACE = """
nodes:
  - {name: big, count: 3, cpu: 64, memory: 256Gi, gpus: 8, gpu_model: A100}
  - {name: small, count: 4, cpu: 16, memory: 64Gi, gpus: 2, gpu_model: T4}
pods:
  - {name: whole, count: 10, cpu: 8, memory: 32Gi, gpus: 1}
  - {name: pair, count: 2, cpu: 16, memory: 64Gi, gpus: 2, gpu_model: A100}
  - {name: share, count: 12, cpu: 2, memory: 8Gi, gpu_share_milli: 450}
  - {name: small, count: 6, cpu: 1, memory: 4Gi, gpu_share_milli: 700}
  - {name: cpu, count: 5, cpu: 6, memory: 16Gi}
"""


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(TRACE)
    return path


def test_inflate_reaches_the_target_and_depends_on_the_seed() -> None:
    pods = read_pods(TRACE, "t.yaml")
    arrivals = inflate(pods, capacity_milli=32_000, tune=1.3, seed=1)
    total = sum(gpu_demand_milli(r) for r in arrivals)
    assert total >= 1.3 * 32_000
    assert total - gpu_demand_milli(arrivals[-1]) < 1.3 * 32_000  # stops at the first draw that crosses
    assert inflate(pods, 32_000, 1.3, seed=1) == arrivals
    assert inflate(pods, 32_000, 1.3, seed=2) != arrivals


@pytest.mark.parametrize("policy", ["bestfit", "fgd", "astra"])
def test_fill_reports_sane_ratios_and_repeats_itself(policy: str) -> None:
    nodes, pods = read_nodes(TRACE, "t.yaml"), read_pods(TRACE, "t.yaml")
    report = fill(nodes, pods, policy, seeds=[3, 4], tune=1.3).to_json()
    assert report["gpus"] == 32
    assert 50 < report["alloc_ratio_at_100"] <= report["alloc_ratio_at_130"] <= 100
    allocated = [point[1] for point in report["curve"]]
    assert allocated == sorted(allocated)  # allocation never goes down in fill mode
    assert report["curve"][-1][0] == 130
    assert report["unallocated_gpus_at_130"] == pytest.approx(
        32 * (1 - report["alloc_ratio_at_130"] / 100), 0.01
    )
    assert sum(report["failed_pods_by_type"].values()) > 0  # 130% cannot all fit
    assert fill(nodes, pods, policy, seeds=[3, 4], tune=1.3).to_json()["curve"] == report["curve"]


def test_cli_fill_writes_the_documented_keys(trace_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        app,
        [
            "sim",
            "fill",
            "--nodes",
            str(trace_file),
            "--pods",
            str(trace_file),
            "--seeds",
            "1-2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    for key in (
        "policy", "seeds", "alloc_ratio_at_100", "alloc_ratio_at_130", "unallocated_gpus_at_130",
        "frag_ratio_at_100", "frag_amount_at_100", "curve", "failed_pods_by_type",
    ):  # fmt: skip
        assert key in report
    assert report["policy"] == "astra"
    assert report["seeds"] == [1, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "tetris"], "unknown policy 'tetris'"),
        (["--seeds", "9-3"], "the end is before the start"),
        (["--seeds", "a-b"], "bad seed range"),
        (["--tune", "0.5"], "--tune must be between"),
    ],
)
def test_cli_fill_rejects_bad_options(trace_file: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        app, ["sim", "fill", "--nodes", str(trace_file), "--pods", str(trace_file), *args]
    )
    assert isinstance(result.exception, CliError)  # main() prints it as one line and exits with its code
    assert result.exception.exit_code == 2
    assert message in result.exception.message


def test_cli_fill_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["sim", "fill", "--nodes", str(tmp_path / "no.csv"), "--pods", "x.csv"])
    assert isinstance(result.exception, CliError)
    assert result.exception.exit_code == 2
    assert "does not exist" in result.exception.message


def test_cli_policies_lists_every_policy() -> None:
    result = CliRunner().invoke(app, ["sim", "policies"])
    assert result.exit_code == 0
    for name in ("random", "dotprod", "bestfit", "gpupacking", "gpuclustering", "fgd", "astra (default)"):
        assert name in result.output
