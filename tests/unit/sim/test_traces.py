"""Trace readers: the real openb CSVs (a slice of them) and the native YAML/JSON format."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pytest

from astrago.domain.resources import ResourceRequest
from astrago.sim.traces import TraceError, read_nodes, read_openb_nodes, read_openb_pods, read_pods


def _head(path: Path, lines: int) -> str:
    with path.open(encoding="utf-8") as handle:
        return "".join(islice(handle, lines))


def test_openb_node_list_slice(shared_data: Path) -> None:
    nodes = read_openb_nodes(
        _head(shared_data / "openb" / "openb_node_list_gpu_node.csv", 51), "gpu_node.csv"
    )
    assert len(nodes) == 50
    first = nodes[0]
    assert (first.name, first.cpu_milli, first.memory_mib) == ("openb-node-0000", 64_000, 262_144)
    assert [gpu.model for gpu in first.gpus] == ["P100", "P100"]


def test_openb_pod_list_slice_maps_each_kind(shared_data: Path) -> None:
    pods = read_openb_pods(_head(shared_data / "openb" / "openb_pod_list_default.csv", 301), "default.csv")
    assert len(pods) == 300
    assert pods[0].request == ResourceRequest(cpu_milli=12_000, memory_mib=16_384, gpus=1)
    assert pods[1].request.gpu_share_milli == 460
    assert any(p.request.gpu_milli == 0 for p in pods)  # CPU-only pods are present
    assert pods[0].run_time == 12_537_496  # deletion_time − scheduled_time


def test_openb_pod_list_without_time_columns(shared_data: Path) -> None:
    pods = read_openb_pods(
        _head(shared_data / "openb" / "openb_pod_list_multigpu20.csv", 21), "multigpu20.csv"
    )
    assert len(pods) == 20
    assert pods[0].creation_time is None


def test_openb_gpu_spec_becomes_a_model_list() -> None:
    text = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np,1000,1024,2,1000,V100M16|V100M32\n"
    assert read_openb_pods(text)[0].request.gpu_model == "V100M16|V100M32"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name,cpu\np,1\n",
            r"missing column\(s\) cpu_milli, memory_mib, num_gpu, gpu_milli.*found: name, cpu",
        ),
        (
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,x,1,0,0\n",
            r"pods\.csv:2: column cpu_milli must be a number",
        ),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,2,500\n", "must ask for one GPU"),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,1500\n", "cannot exceed 1000"),
        ("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n", "no pods"),
    ],
)
def test_bad_openb_pods_are_named_by_file_and_line(text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        read_pods(text, "pods.csv")


NATIVE = """
nodes:
  - {name: a100, count: 2, cpu: 64, memory: 512Gi, gpus: 8, gpu_model: A100-SXM4-80GB}
  - {name: mig, cpu: 32, memory: 256Gi, gpus: 1, gpu_model: A100-SXM4-80GB, mig: true}
pods:
  - {name: train, count: 3, cpu: 8, memory: 64Gi, gpus: 2, gpu_model: "A100-SXM4-80GB|H100"}
  - {name: nb, cpu: 500m, memory: 8Gi, gpu_share: 0.25, arrival: 10, duration: 60}
  - {name: infer, cpu: 2, memory: 16Gi, mig: 1g.10gb}
  - {name: etl, cpu: 4, memory: 16Gi}
"""


def test_native_yaml_expands_counts_and_parses_units() -> None:
    nodes = read_nodes(NATIVE, "plan.yaml")
    assert [n.name for n in nodes] == ["a100-0", "a100-1", "mig"]
    assert nodes[0].memory_mib == 512 * 1024
    assert nodes[2].gpus[0].mig_enabled
    pods = read_pods(NATIVE, "plan.yaml")
    assert [p.name for p in pods] == ["train-0", "train-1", "train-2", "nb", "infer", "etl"]
    assert pods[3].request.gpu_share_milli == 250
    assert pods[3].request.cpu_milli == 500
    assert (pods[3].creation_time, pods[3].run_time) == (10, 60)
    assert pods[4].request.mig_profile == "1g.10gb"


def test_native_json_is_read_too() -> None:
    text = json.dumps({"pods": [{"name": "p", "gpus": 1, "cpu": 2, "memory": "4Gi"}]})
    assert read_pods(text, "w.json")[0].request.gpus == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pods: [{name: p, gpus: 1, colour: red}]", r"pods\.0\.colour: Extra inputs are not permitted"),
        ("pods: [{name: p, gpus: 1, gpu_share: 0.5}]", "not several of them"),
        ("pods: [{name: p, memory: 12 parsecs}]", "unknown memory unit 'parsecs'"),
        ("nodes: [{name: n, cpu: 4, memory: 8Gi, gpus: 2}]", "needs gpu_model"),
        ("- just a list", "a native trace is a mapping"),
        ("pods: [", "not valid YAML"),
    ],
)
def test_bad_native_traces_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        read_pods(text, "w.yaml") if "nodes" not in text else read_nodes(text, "w.yaml")


def test_unknown_extension_is_refused() -> None:
    with pytest.raises(TraceError, match="unknown trace format"):
        read_pods("", "trace.txt")
