"""The scripted GPU source: timelines, selectors that find real processes on this host, MIG, bad scripts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from astrago.gpu.model import MIB
from astrago.gpu.sources import ScriptError, open_source
from astrago.gpu.sources.base import SourceFailed
from astrago.gpu.sources.scripted import ScriptedSource, value_at


@pytest.fixture
def marked_child() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A real process whose command line carries a unique marker, started through a shell wrapper that
    also carries it (the source must report the outermost one only)."""
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "ASTRAGO_WORKLOAD_ID": f"wl-{marker}", "ASTRAGO_REPLICA_INDEX": "1"}
    child = subprocess.Popen(
        ["sh", "-c", f"{sys.executable} -c 'import time; time.sleep(60)' {marker}; true {marker}"], env=env
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _children(child.pid):
        time.sleep(0.05)
    yield child, marker
    child.kill()
    child.wait()
    for pid in _children(child.pid):
        os.kill(pid, 9)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_a_timeline_holds_each_step_until_the_next() -> None:
    timeline = [(0.0, 90.0), (60.0, 3.0)]
    assert value_at(timeline, 0) == 90.0
    assert value_at(timeline, 59.9) == 90.0
    assert value_at(timeline, 60) == 3.0
    assert value_at([(10.0, 5.0)], 9) is None  # before the first step: not yet known
    assert value_at(42, 1e9) == 42.0
    assert value_at(None, 0) is None


def test_selectors_find_the_outermost_matching_process(
    tmp_path: Path, marked_child: tuple[subprocess.Popen[bytes], str]
) -> None:
    child, marker = marked_child
    script = tmp_path / "gpus.yaml"
    script.write_text(
        f"""
gpus:
  - {{index: 0, name: NVIDIA A100-SXM4-80GB, memory_total_mib: 81920, temperature_celsius: 41}}
  - {{index: 1}}
processes:
  - {{gpu: 0, select: {{command: "{marker}"}}, utilization: 75, memory_mib: 1000}}
  - {{gpu: 1, select: {{workload: "wl-{marker}", replica: 1}}, utilization: [[0, 30], [3600, 1]]}}
  - {{gpu: 1, select: {{workload: "wl-{marker}", replica: 0}}, utilization: 99}}
  - {{gpu: 1, select: {{command: "no-such-process-{marker}"}}, utilization: 50}}
"""
    )
    source = open_source(f"scripted:{script}")
    assert isinstance(source, ScriptedSource)
    assert source.name == "scripted"
    reading = source.read()
    by_gpu = {(p.gpu_index, p.pid): p for p in reading.processes}
    # the shell wrapper holds the marker too; its python child does as well: only the wrapper is reported
    assert set(by_gpu) == {(0, child.pid), (1, child.pid)}
    assert by_gpu[(0, child.pid)].sm_utilization_percent == 75
    assert by_gpu[(0, child.pid)].used_memory_bytes == 1000 * MIB
    assert by_gpu[(1, child.pid)].sm_utilization_percent == 30
    devices = {d.index: d for d in reading.devices}
    assert devices[0].utilization_percent == 75  # the sum of its processes when not scripted
    assert devices[0].memory_used_mib == 1000
    assert devices[0].temperature_celsius == 41
    assert devices[0].model == "A100-SXM4-80GB"
    assert devices[1].utilization_percent == 30


def test_mig_gpus_report_memory_but_no_utilisation_per_process(tmp_path: Path) -> None:
    script = tmp_path / "mig.json"
    script.write_text(
        f'{{"gpus": [{{"index": 0, "mig": true}}], "processes": '
        f'[{{"gpu": 0, "select": {{"pid": {os.getpid()}}}, "utilization": 80, "memory_mib": 512}}]}}'
    )
    reading = ScriptedSource(script).read()
    (process,) = reading.processes
    assert process.sm_utilization_percent is None
    assert process.mig_key == (1, 0)
    assert process.used_memory_bytes == 512 * MIB
    assert reading.devices[0].utilization_percent is None
    assert reading.devices[0].mig_enabled


def test_a_rewritten_script_restarts_its_timeline(tmp_path: Path) -> None:
    script = tmp_path / "gpus.yaml"
    script.write_text("gpus: [{index: 0, utilization: [[0, 10], [100000, 20]]}]\n")
    source = ScriptedSource(script)
    assert source.read().devices[0].utilization_percent == 10
    script.write_text("gpus: [{index: 0, utilization: 55}]\n")
    os.utime(script, (time.time() + 1, time.time() + 1))  # a new mtime even on coarse file systems
    assert source.read().devices[0].utilization_percent == 55


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gpus: [{index: 0}]\nprocesses: [{gpu: 3, select: {pid: 1}}]", "does not declare"),
        ("gpus: [{index: 0}, {index: 0}]", "appears twice"),
        ("gpus: [{index: 0}]\nprocesses: [{gpu: 0, select: {pid: 1, command: x}}]", "exactly one"),
        ("gpus: [{index: 0, colour: red}]", "colour"),
        ("gpus: [{index: 0, utilization: [[0, -5]]}]", "utilization"),
        ("gpus: [", "not valid YAML"),
    ],
)
def test_a_bad_script_is_refused_with_where_and_why(tmp_path: Path, text: str, message: str) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text(text)
    with pytest.raises(ScriptError, match=message):
        ScriptedSource(script)


def test_a_script_broken_later_fails_that_reading_only(tmp_path: Path) -> None:
    script = tmp_path / "gpus.yaml"
    script.write_text("gpus: [{index: 0, utilization: 5}]\n")
    source = ScriptedSource(script)
    script.write_text("gpus: [")
    os.utime(script, (time.time() + 1, time.time() + 1))
    with pytest.raises(SourceFailed, match="not valid YAML"):
        source.read()
    with pytest.raises(ScriptError, match="needs a path"):
        open_source("scripted:")
    with pytest.raises(ScriptError, match="cannot read"):
        open_source(f"scripted:{tmp_path / 'missing.yaml'}")
