"""Parsers for `nvidia-smi` outputs: `-q -x` (XML), `-q` (text), `--query-gpu` / `--query-compute-apps`
(CSV), `-L` and `pmon`. Each turns one output into the common model; unavailable values ("N/A",
"[N/A]", "Not available in WDDM driver model", "[Requested functionality has been deprecated]") become
`None`. The GPU index is the position in the output (nvidia-smi lists GPUs in index order)."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from astrago.gpu.mig import ListedGpu, ListedMig
from astrago.gpu.model import (
    MIB,
    GpuDevice,
    GpuHealthSignals,
    GpuProcess,
    MigDevice,
    ProcessKind,
    Slowdown,
    SourceReading,
    clamp_percent,
    merge_duplicate_processes,
)


class SmiParseError(ValueError):
    """The text is not the `nvidia-smi` output it was supposed to be."""


_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")
_BYTE_UNITS = {"b": 1, "kib": 1024, "mib": MIB, "gib": 1024 * MIB, "kb": 1000, "mb": 1000**2, "gb": 1000**3}


def number(text: str | None) -> float | None:
    """The leading number of "53 C", "432.21 W", "2296 MiB"; `None` for N/A and friends."""
    if text is None:
        return None
    match = _NUMBER.match(text)
    return float(match.group(1)) if match else None


def mib(text: str | None) -> int | None:
    value = number(text)
    if value is None or text is None:
        return None
    unit = text.strip().split()[-1].lower() if len(text.split()) > 1 else "mib"
    return int(value * _BYTE_UNITS.get(unit, MIB) // MIB)


def _optional_int(text: str | None) -> int | None:
    value = number(text)
    return int(value) if value is not None else None


# ---------------------------------------------------------------- `-q -x` (XML)


def parse_query_xml(text: str | bytes) -> SourceReading:
    """`nvidia-smi -q -x`. MIG devices come without UUID or profile (join `-L` with `mig.apply_listing`)."""
    try:
        # The input comes from the local nvidia-smi or a file the operator chose; no entity tricks to fear.
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise SmiParseError(f"not nvidia-smi -q -x output: {exc}") from exc
    if root.tag != "nvidia_smi_log":
        raise SmiParseError(f"not nvidia-smi -q -x output: root element <{root.tag}>")
    driver = _xml_text(root, "driver_version")
    reading = SourceReading()
    for index, gpu in enumerate(root.findall("gpu")):
        migs = [_xml_mig(mig) for mig in gpu.findall("mig_devices/mig_device")]
        utilization = gpu.find("utilization")
        reading.devices.append(
            GpuDevice(
                index=index,
                uuid=_xml_text(gpu, "uuid"),
                name=_xml_text(gpu, "product_name") or "unknown",
                memory_total_mib=mib(_xml_text(gpu, "fb_memory_usage/total")) or 0,
                memory_used_mib=mib(_xml_text(gpu, "fb_memory_usage/used")),
                mig_devices=migs,
                mig_enabled=(_xml_text(gpu, "mig_mode/current_mig") or "").lower() == "enabled",
                utilization_percent=clamp_percent(number(_xml_text(utilization, "gpu_util"))),
                memory_utilization_percent=clamp_percent(number(_xml_text(utilization, "memory_util"))),
                temperature_celsius=number(_xml_text(gpu, "temperature/gpu_temp")),
                power_watts=_first_number(
                    gpu,
                    "gpu_power_readings/power_draw",
                    "gpu_power_readings/average_power_draw",
                    "gpu_power_readings/instant_power_draw",
                    "power_readings/power_draw",
                ),
                sm_clock_mhz=number(_xml_text(gpu, "clocks/sm_clock")),
                memory_clock_mhz=number(_xml_text(gpu, "clocks/mem_clock")),
                driver_version=driver,
            )
        )
        reading.health.append(_xml_health(gpu, index))
        for info in gpu.findall("processes/process_info"):
            reading.processes.append(
                _process(
                    index,
                    pid=_xml_text(info, "pid"),
                    kind=_xml_text(info, "type"),
                    name=_xml_text(info, "process_name"),
                    used=_xml_text(info, "used_memory"),
                    gi=_xml_text(info, "gpu_instance_id"),
                    ci=_xml_text(info, "compute_instance_id"),
                )
            )
    reading.processes = merge_duplicate_processes(reading.processes)
    return reading


# The reason names of `<clocks_event_reasons>` (drivers ≥ 535) and `<clocks_throttle_reasons>` (older).
_XML_SLOWDOWNS = (
    ("hw_slowdown", Slowdown.HW),
    ("hw_thermal_slowdown", Slowdown.HW_THERMAL),
    ("hw_power_brake_slowdown", Slowdown.HW_POWER_BRAKE),
    ("sw_thermal_slowdown", Slowdown.SW_THERMAL),
)


def _xml_health(gpu: ET.Element, index: int) -> GpuHealthSignals:
    slowdowns = set()
    for section, prefix in (
        ("clocks_event_reasons", "clocks_event_reason_"),
        ("clocks_throttle_reasons", "clocks_throttle_reason_"),
    ):
        for name, slowdown in _XML_SLOWDOWNS:
            if (_xml_text(gpu, f"{section}/{prefix}{name}") or "").lower() == "active":
                slowdowns.add(slowdown)
    volatile = gpu.find("ecc_errors/volatile")
    uncorrectable = None
    if volatile is not None:
        # dram_/sram_uncorrectable (newer), sram_uncorrectable_parity/_secded (Hopper), double_bit/total (old)
        counts = [
            number(child.text)
            for child in volatile.iter()
            if child.tag.endswith("uncorrectable")
            or child.tag.startswith(("sram_uncorrectable_", "dram_uncorrectable_"))
        ]
        old = number(_xml_text(volatile, "double_bit/total"))
        known = [int(c) for c in counts if c is not None] + ([int(old)] if old is not None else [])
        uncorrectable = sum(known) if known else None
    return GpuHealthSignals(
        gpu_index=index,
        ecc_uncorrectable=uncorrectable,
        retired_pages_pending=_yes_no(
            _xml_text(gpu, "retired_pages/pending_blacklist")
            or _xml_text(gpu, "retired_pages/pending_retirement")
        ),
        remapped_rows_pending=_yes_no(_xml_text(gpu, "remapped_rows/remapped_row_pending")),
        remapping_failed=_yes_no(_xml_text(gpu, "remapped_rows/remapped_row_failure")),
        slowdowns=frozenset(slowdowns),
    )


def _yes_no(text: str | None) -> bool | None:
    value = (text or "").strip().lower()
    if value in ("yes", "true", "active"):
        return True
    if value in ("no", "false", "not active"):
        return False
    return None  # N/A: the GPU does not have it


def _xml_text(node: ET.Element | None, path: str) -> str | None:
    if node is None:
        return None
    found = node.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _first_number(node: ET.Element, *paths: str) -> float | None:
    for path in paths:
        value = number(_xml_text(node, path))
        if value is not None:
            return value
    return None


def _xml_mig(node: ET.Element) -> MigDevice:
    return MigDevice(
        index=_optional_int(_xml_text(node, "index")) or 0,
        gpu_instance_id=_optional_int(_xml_text(node, "gpu_instance_id")) or 0,
        compute_instance_id=_optional_int(_xml_text(node, "compute_instance_id")) or 0,
        memory_total_mib=mib(_xml_text(node, "fb_memory_usage/total")),
        memory_used_mib=mib(_xml_text(node, "fb_memory_usage/used")),
    )


def _process(
    gpu_index: int,
    *,
    pid: str | None,
    kind: str | None,
    name: str | None,
    used: str | None,
    gi: str | None,
    ci: str | None,
) -> GpuProcess:
    pid_value = _optional_int(pid)
    if pid_value is None:
        raise SmiParseError(f"process entry on GPU {gpu_index} without a PID")
    used_mib = mib(used)
    return GpuProcess(
        pid=pid_value,
        gpu_index=gpu_index,
        kind=ProcessKind.parse(kind or "C"),
        name=name or "",
        used_memory_bytes=used_mib * MIB if used_mib is not None else None,
        gpu_instance_id=_optional_int(gi),
        compute_instance_id=_optional_int(ci),
    )


# ---------------------------------------------------------------- `-q` (text)


@dataclass(slots=True)
class _Node:
    key: str
    value: str | None
    children: list[_Node] = field(default_factory=list)

    def child(self, key: str) -> _Node | None:
        return next((node for node in self.children if node.key == key), None)

    def value_at(self, *path: str) -> str | None:
        node: _Node | None = self
        for key in path:
            node = node.child(key) if node is not None else None
        return node.value if node is not None else None

    def all(self, key: str) -> Iterator[_Node]:
        return (node for node in self.children if node.key == key)


_KEY_VALUE = re.compile(r"^(?P<key>[^:]*?\S)\s+:\s?(?P<value>.*)$")


def _text_tree(text: str) -> _Node:
    """`nvidia-smi -q` is an indented outline of `Key : value` lines and section headers."""
    root = _Node("", None)
    stack: list[tuple[int, _Node]] = [(-1, root)]
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("=="):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        line = raw.strip()
        match = _KEY_VALUE.match(line)
        node = _Node(match["key"], match["value"].strip()) if match else _Node(line, None)
        while stack[-1][0] >= indent:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((indent, node))
    return root


def parse_query_text(text: str) -> SourceReading:
    """`nvidia-smi -q`. Like the XML, MIG devices come without UUID or profile."""
    tree = _text_tree(text)
    gpus = [node for node in tree.children if node.key.startswith("GPU ") and node.value is None]
    if tree.child("Driver Version") is None and not gpus:
        raise SmiParseError("not nvidia-smi -q output: no 'Driver Version' and no GPU section")
    driver = tree.value_at("Driver Version")
    reading = SourceReading()
    for index, gpu in enumerate(gpus):
        reading.devices.append(
            GpuDevice(
                index=index,
                uuid=gpu.value_at("GPU UUID"),
                name=gpu.value_at("Product Name") or "unknown",
                memory_total_mib=mib(gpu.value_at("FB Memory Usage", "Total")) or 0,
                memory_used_mib=mib(gpu.value_at("FB Memory Usage", "Used")),
                mig_devices=[_text_mig(node) for node in gpu.all("MIG Device")],
                mig_enabled=(gpu.value_at("MIG Mode", "Current") or "").lower() == "enabled",
                utilization_percent=clamp_percent(number(gpu.value_at("Utilization", "GPU"))),
                memory_utilization_percent=clamp_percent(number(gpu.value_at("Utilization", "Memory"))),
                temperature_celsius=number(gpu.value_at("Temperature", "GPU Current Temp")),
                power_watts=_first_value(
                    gpu,
                    ("GPU Power Readings", "Power Draw"),
                    ("GPU Power Readings", "Average Power Draw"),
                    ("GPU Power Readings", "Instantaneous Power Draw"),
                    ("Power Readings", "Power Draw"),
                ),
                sm_clock_mhz=number(gpu.value_at("Clocks", "SM")),
                memory_clock_mhz=number(gpu.value_at("Clocks", "Memory")),
                driver_version=driver,
            )
        )
        reading.health.append(_text_health(gpu, index))
        reading.processes.extend(_text_processes(index, gpu.child("Processes")))
    reading.processes = merge_duplicate_processes(reading.processes)
    return reading


_TEXT_SLOWDOWNS = {
    "HW Slowdown": Slowdown.HW,
    "HW Thermal Slowdown": Slowdown.HW_THERMAL,
    "HW Power Brake Slowdown": Slowdown.HW_POWER_BRAKE,
    "SW Thermal Slowdown": Slowdown.SW_THERMAL,
}


def _descendants(node: _Node) -> Iterator[_Node]:
    for child in node.children:
        yield child
        yield from _descendants(child)


def _text_health(gpu: _Node, index: int) -> GpuHealthSignals:
    reasons = gpu.child("Clocks Event Reasons") or gpu.child("Clocks Throttle Reasons")
    slowdowns = set()
    if reasons is not None:  # "HW Thermal Slowdown" is indented under "HW Slowdown"
        for node in _descendants(reasons):
            slowdown = _TEXT_SLOWDOWNS.get(node.key)
            if slowdown is not None and (node.value or "").lower() == "active":
                slowdowns.add(slowdown)
    volatile = gpu.child("ECC Errors")
    volatile = volatile.child("Volatile") if volatile is not None else None
    uncorrectable = None
    if volatile is not None:
        counts = [
            number(node.value)
            for node in _descendants(volatile)
            if "Uncorrectable" in node.key or (node.key == "Total" and "Double" in volatile.key)
        ]
        double_bit = volatile.child("Double Bit")
        if double_bit is not None:
            counts.append(number(double_bit.value_at("Total")))
        known = [int(c) for c in counts if c is not None]
        uncorrectable = sum(known) if known else None
    return GpuHealthSignals(
        gpu_index=index,
        ecc_uncorrectable=uncorrectable,
        retired_pages_pending=_yes_no(
            gpu.value_at("Retired Pages", "Pending Page Blacklist")
            or gpu.value_at("Retired Pages", "Pending Page Retirement")
        ),
        remapped_rows_pending=_yes_no(gpu.value_at("Remapped Rows", "Pending")),
        remapping_failed=_yes_no(gpu.value_at("Remapped Rows", "Remapping Failure Occurred")),
        slowdowns=frozenset(slowdowns),
    )


def _first_value(node: _Node, *paths: tuple[str, ...]) -> float | None:
    for path in paths:
        value = number(node.value_at(*path))
        if value is not None:
            return value
    return None


def _text_mig(node: _Node) -> MigDevice:
    memory = node.child("Shared FB Memory Usage") or node.child("FB Memory Usage")
    return MigDevice(
        index=_optional_int(node.value_at("Index")) or 0,
        gpu_instance_id=_optional_int(node.value_at("GPU Instance ID")) or 0,
        compute_instance_id=_optional_int(node.value_at("Compute Instance ID")) or 0,
        memory_total_mib=mib(memory.value_at("Total")) if memory else None,
        memory_used_mib=mib(memory.value_at("Used")) if memory else None,
    )


def _text_processes(gpu_index: int, section: _Node | None) -> list[GpuProcess]:
    """GI and CI lines precede each `Process ID` line as siblings; type, name and memory are its children."""
    if section is None:
        return []
    processes = []
    gi: str | None = None
    ci: str | None = None
    for node in section.children:
        if node.key == "GPU instance ID":
            gi = node.value
        elif node.key == "Compute instance ID":
            ci = node.value
        elif node.key == "Process ID":
            processes.append(
                _process(
                    gpu_index,
                    pid=node.value,
                    kind=node.value_at("Type"),
                    name=node.value_at("Name"),
                    used=node.value_at("Used GPU Memory"),
                    gi=gi,
                    ci=ci,
                )
            )
            gi = ci = None
    return processes


# ---------------------------------------------------------------- `-L`

_LIST_GPU = re.compile(r"^GPU (?P<index>\d+): (?P<name>.+?) \(UUID: (?P<uuid>[^)\s]+)\)\s*$")
_LIST_MIG = re.compile(r"^\s+MIG (?P<profile>\S+)\s+Device\s+(?P<index>\d+): \(UUID: (?P<uuid>[^)\s]+)\)\s*$")


def parse_list(text: str) -> list[ListedGpu]:
    """`nvidia-smi -L`: GPUs with their UUIDs, and under each its MIG devices with profile and UUID."""
    gpus: list[ListedGpu] = []
    for line in text.splitlines():
        if gpu := _LIST_GPU.match(line):
            gpus.append(ListedGpu(int(gpu["index"]), gpu["name"], gpu["uuid"], ()))
        elif (mig := _LIST_MIG.match(line)) and gpus:
            listed = ListedMig(int(mig["index"]), mig["profile"], mig["uuid"])
            gpus[-1] = replace(gpus[-1], migs=(*gpus[-1].migs, listed))
    if not gpus and text.strip():
        raise SmiParseError("not nvidia-smi -L output: no 'GPU <n>: <name> (UUID: ...)' line")
    return gpus


# ---------------------------------------------------------------- `pmon`


@dataclass(frozen=True, slots=True)
class PmonSample:
    sm_percent: float | None
    memory_percent: float | None


def parse_pmon(text: str) -> dict[tuple[int, int], PmonSample]:
    """`nvidia-smi pmon`: the newest row per (GPU, PID). "-" means no sample in that period."""
    header: list[str] | None = None
    samples: dict[tuple[int, int], PmonSample] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            if header is None:
                header = line.lstrip("#").split()
            continue
        fields = line.split()
        if header is None or len(fields) < 5 or not fields[0].isdigit() or not fields[1].isdigit():
            continue  # idle GPUs print rows of "-"
        row = dict(zip(header, fields, strict=False))
        samples[(int(fields[0]), int(fields[1]))] = PmonSample(number(row.get("sm")), number(row.get("mem")))
    return samples


def apply_pmon(reading: SourceReading, samples: dict[tuple[int, int], PmonSample]) -> SourceReading:
    """Per-process utilization where the driver has it: 0 for a running process without a sample, absent on
    MIG (pmon prints "-" there too, but it cannot measure it, so 0 would be wrong)."""
    mig_gpus = {device.index for device in reading.devices if device.mig_enabled}
    processes = []
    for proc in reading.processes:
        if proc.gpu_index in mig_gpus or proc.mig_key is not None:
            processes.append(proc)
            continue
        sample = samples.get((proc.gpu_index, proc.pid))
        sm = sample.sm_percent if sample else None
        mem = sample.memory_percent if sample else None
        processes.append(
            replace(
                proc,
                sm_utilization_percent=clamp_percent(sm) if sm is not None else 0.0,
                memory_utilization_percent=clamp_percent(mem) if mem is not None else 0.0,
            )
        )
    return replace(reading, processes=processes)


# ---------------------------------------------------------------- CSV queries

GPU_QUERY_FIELDS = (
    "index",
    "uuid",
    "name",
    "driver_version",
    "memory.total",
    "memory.used",
    "utilization.gpu",
    "utilization.memory",
    "temperature.gpu",
    "power.draw",
    "clocks.sm",
    "clocks.mem",
    "mig.mode.current",
)
COMPUTE_APPS_FIELDS = ("gpu_uuid", "pid", "process_name", "used_gpu_memory")
# `nvidia-smi --query-gpu` accepts aliases; recorded outputs use the long names.
_ALIASES = {
    "clocks.current.sm": "clocks.sm",
    "clocks.current.memory": "clocks.mem",
    "used_memory": "used_gpu_memory",
}


def _csv_rows(text: str) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    rows = [row for row in reader if row]
    if not rows:
        return []
    header = [re.sub(r"\s*\[.*\]$", "", name.strip()) for name in rows[0]]
    header = [_ALIASES.get(name, name) for name in header]
    return [dict(zip(header, (value.strip() for value in row), strict=False)) for row in rows[1:]]


def parse_gpu_csv(text: str) -> list[GpuDevice]:
    """`nvidia-smi --query-gpu=<fields> --format=csv` (with header; units in values or `nounits`)."""
    devices = []
    for position, row in enumerate(_csv_rows(text)):
        if "name" not in row or "memory.total" not in row:
            raise SmiParseError("--query-gpu CSV needs at least the name and memory.total columns")
        index = _optional_int(row.get("index"))
        devices.append(
            GpuDevice(
                index=index if index is not None else position,
                uuid=row.get("uuid") or None,
                name=row["name"],
                memory_total_mib=mib(row["memory.total"]) or 0,
                memory_used_mib=mib(row.get("memory.used")),
                mig_enabled=(row.get("mig.mode.current") or "").lower() == "enabled",
                utilization_percent=clamp_percent(number(row.get("utilization.gpu"))),
                memory_utilization_percent=clamp_percent(number(row.get("utilization.memory"))),
                temperature_celsius=number(row.get("temperature.gpu")),
                power_watts=number(row.get("power.draw")),
                sm_clock_mhz=number(row.get("clocks.sm")),
                memory_clock_mhz=number(row.get("clocks.mem")),
                driver_version=row.get("driver_version"),
            )
        )
    return devices


def parse_compute_apps_csv(text: str, devices: list[GpuDevice]) -> list[GpuProcess]:
    """`nvidia-smi --query-compute-apps=...`. It names the parent GPU by UUID and has no GI/CI column, so on
    a MIG GPU these processes cannot be placed on a MIG device."""
    index_by_uuid = {device.uuid: device.index for device in devices if device.uuid}
    processes = []
    for row in _csv_rows(text):
        uuid = row.get("gpu_uuid")
        if uuid not in index_by_uuid:
            raise SmiParseError(f"--query-compute-apps names GPU {uuid!r}, which --query-gpu did not list")
        processes.append(
            _process(
                index_by_uuid[uuid],
                pid=row.get("pid"),
                kind="C",
                name=row.get("process_name"),
                used=row.get("used_gpu_memory"),
                gi=None,
                ci=None,
            )
        )
    return merge_duplicate_processes(processes)
