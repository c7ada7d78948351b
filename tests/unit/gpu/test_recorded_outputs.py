"""Every recorded nvidia-smi output in ../shared/data/gpu parses, and what it says adds up.

Counts are checked against the raw text independently of the parser (`<process_info>` elements, `Process ID`
lines, `--query-compute-apps` rows), plus the facts the data README states about specific machines."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from astrago.gpu.collector import Collector
from astrago.gpu.metrics import MetricsRenderer
from astrago.gpu.model import MIB, SourceReading
from astrago.gpu.procfs import ProcessTable
from astrago.gpu.sources import ReplaySource

CAPTURES = "utkuozdemir_nvidia_gpu_exporter"


def _xml_files(root: Path) -> list[Path]:
    return sorted(root.glob("gpu/*/*.xml"))


def _capture_dirs(root: Path) -> list[Path]:
    return sorted(path for path in (root / "gpu" / CAPTURES / "split").iterdir() if path.is_dir())


def _capture_files(root: Path) -> list[Path]:
    return sorted((root / "gpu" / CAPTURES).glob("*__*__*.txt"))


def _readings(shared_data: Path) -> dict[str, SourceReading]:
    readings: dict[str, SourceReading] = {}
    for path in _xml_files(shared_data):
        readings[path.name] = ReplaySource(path).read()
    for path in [*_capture_dirs(shared_data), *_capture_files(shared_data)]:
        for state in ReplaySource(path).states():
            readings[f"{path.name}:{state}"] = ReplaySource(path, state=state).read()
    return readings


@pytest.fixture(scope="module")
def readings(shared_data: Path) -> dict[str, SourceReading]:
    return _readings(shared_data)


def test_every_recorded_file_is_read(shared_data: Path, readings: dict[str, SourceReading]) -> None:
    assert len(_xml_files(shared_data)) >= 14
    assert len(_capture_dirs(shared_data)) >= 9
    for name, reading in readings.items():
        assert reading.devices, name
        assert reading.errors == [], name
        assert [d.index for d in reading.devices] == list(range(len(reading.devices))), name


def test_invariants_hold_for_every_reading(readings: dict[str, SourceReading]) -> None:
    for name, reading in readings.items():
        devices = {d.index: d for d in reading.devices}
        keys = [(p.pid, p.gpu_index, p.mig_key) for p in reading.processes]
        assert len(keys) == len(set(keys)), f"{name}: a process is listed twice on one device"
        for proc in reading.processes:
            device = devices[proc.gpu_index]
            if proc.used_memory_bytes is not None:
                assert 0 <= proc.used_memory_bytes <= device.memory_total_mib * MIB, name
            if device.mig_enabled:
                assert proc.sm_utilization_percent is None, f"{name}: utilization on MIG must be absent"
                assert proc.memory_utilization_percent is None, name
                mig = device.mig_device(*proc.mig_key) if proc.mig_key else None
                assert mig is not None, f"{name}: MIG process {proc.pid} not on a MIG device"
                assert (proc.used_memory_bytes or 0) <= (mig.memory_total_mib or 0) * MIB, name
            for value in (proc.sm_utilization_percent, proc.memory_utilization_percent):
                assert value is None or 0 <= value <= 100, name
        for device in reading.devices:
            assert device.memory_total_mib > 0, name
            assert device.memory_used_mib is None or device.memory_used_mib <= device.memory_total_mib, name
            for mig in device.mig_devices:
                assert mig.memory_used_mib is not None
                assert mig.memory_total_mib is not None
                assert mig.memory_used_mib <= mig.memory_total_mib <= device.memory_total_mib, name


def test_xml_process_counts_match_the_raw_elements(
    shared_data: Path, readings: dict[str, SourceReading]
) -> None:
    for path in _xml_files(shared_data):
        text = path.read_text()
        gpus = text.count("<gpu id=")
        assert len(readings[path.name].devices) == gpus, path.name
        assert len(readings[path.name].processes) == text.count("<process_info>"), path.name


def test_capture_counts_match_the_raw_sections(shared_data: Path, readings: dict[str, SourceReading]) -> None:
    for capture in _capture_dirs(shared_data):
        for state in ("idle", "load"):
            reading = readings[f"{capture.name}:{state}"]
            query = (capture / f"{state}__query-q.txt").read_text()
            assert len(reading.processes) == len(re.findall(r"^\s+Process ID\s+:", query, re.M)), capture.name
            apps = (
                (capture / f"{state}__query-compute-apps-per-process.txt")
                .read_text()
                .strip()
                .splitlines()[1:]
            )
            compute = [p for p in reading.processes if "C" in p.kind.value]
            assert len(compute) == len(apps), (
                f"{capture.name}:{state} compute processes vs --query-compute-apps"
            )
            # the whole-capture file and its split directory say the same thing
            assert readings[f"{capture.name}.txt:{state}"].processes == reading.processes


def test_facts_the_data_readme_states(readings: dict[str, SourceReading]) -> None:
    eight = readings["gtx-8card.xml"]
    assert len(eight.devices) == 8
    assert Counter(p.pid for p in eight.processes) == {37305: 8}  # one PID on all 8 GPUs
    assert sorted(p.gpu_index for p in eight.processes) == list(range(8))
    assert len(readings["gtx-1card.xml"].processes) == 4

    a100 = readings["a100-sxm4-v12.xml"].devices[0]
    assert a100.mig_enabled
    assert [m.gpu_instance_id for m in a100.mig_devices] == [3, 4, 5, 6]

    mig = readings["linux-x86_64__nvidia-h100-mig__590.48.01:load"]
    profiles = [m.profile for m in mig.devices[0].mig_devices]
    assert profiles == ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]
    assert len({m.uuid for m in mig.devices[0].mig_devices}) == 4
    assert {p.mig_key for p in mig.processes} == {(2, 0)}
    assert len(mig.processes) == 3

    desktop = readings["linux-x86_64__nvidia-geforce-rtx-4080-super__595.71.05:load"]
    kwin = [p for p in desktop.processes if p.name.endswith("kwin_wayland")]
    assert [p.kind.value for p in kwin] == ["C+G"]  # counted once
    for name, count in (("591.86", 12), ("610.62", 21)):
        windows = readings[f"windows-x86_64__nvidia-geforce-rtx-2080-super__{name}:load"]
        assert len(windows.processes) == count
        assert all(p.used_memory_bytes is None for p in windows.processes)  # WDDM hides it


def test_every_reading_renders_without_duplicate_series(
    readings: dict[str, SourceReading], tmp_path: Path
) -> None:
    class Fixed:
        name = "replay"

        def __init__(self, reading: SourceReading) -> None:
            self.reading = reading

        def read(self) -> SourceReading:
            return self.reading

        def close(self) -> None:
            pass

    for name, reading in readings.items():
        collector = Collector(Fixed(reading), ProcessTable(tmp_path))
        lines = MetricsRenderer(collector.health).render(collector.collect()).decode().splitlines()
        series = [line.rsplit(" ", 1)[0] for line in lines if line and not line.startswith("#")]
        assert len(series) == len(set(series)), name
