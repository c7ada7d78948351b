"""GPU exporter benchmark: collection + render cost, scrape latency, and nvidia-smi XML parsing cost.

Scenarios: 8 GPUs × 100 processes, and 8 GPUs × 125 = 1,000 processes, each process in a pod (a fake /proc
tree with systemd/containerd cgroup paths, and a pod directory naming every pod). Sources:
- fake NVML (no GPU here: tests/unit/gpu/fakes.py behind the real NVML source code),
- replay of a `nvidia-smi -q -x` file of the same content (parsing it is most of that source's cost).
For each: median CPU and wall time of one collection + render over N rounds with warm caches, and the first
(cold) collection; then the scrape latency of `/metrics` served from the snapshot over loopback; and, side by
side, parsing that XML alone. Run from the repository root:

    .venv/bin/python -m benchmarks.gpu.bench_collect --rounds 30
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector as PromCollector
from tests.unit.gpu.fakes import FakeGpu, FakeNvml, FakeProcess, FakeSample
from tests.unit.gpu.proc_tree import FakeProc, systemd_containerd

from astrago.gpu.collector import Collector
from astrago.gpu.exporter import GpuExporter
from astrago.gpu.kube import PodRef, StaticPodDirectory
from astrago.gpu.metrics import MetricsRenderer, snapshot_families
from astrago.gpu.procfs import ProcessTable
from astrago.gpu.sources.base import GpuSource
from astrago.gpu.sources.nvml import NvmlSource
from astrago.gpu.sources.replay import ReplaySource
from astrago.gpu.sources.smi_parsers import parse_query_xml

GPUS = 8


def pod_uid(pid: int) -> str:
    return f"{pid:08x}-0000-4000-8000-000000000000"


def container_id(pid: int) -> str:
    return f"{pid:064x}"


def build_node(root: Path, per_gpu: int) -> tuple[FakeNvml, StaticPodDirectory, Path]:
    """GPUs with `per_gpu` processes each, every process in its own pod, and the matching /proc and XML."""
    proc = FakeProc(root / "proc")
    gpus = []
    pods = []
    for index in range(GPUS):
        pids = [100_000 + index * 1000 + n for n in range(per_gpu)]
        gpus.append(
            FakeGpu(
                uuid=f"GPU-{index:08d}-0000-0000-0000-000000000000",
                processes=[FakeProcess(pid, 512) for pid in pids],
                samples=[FakeSample(pid, 1_000 + n, 10 + n % 80, n % 40) for n, pid in enumerate(pids)],
            )
        )
        for pid in pids:
            proc.add(
                pid,
                ["python", "train.py", "--rank", str(pid)],
                systemd_containerd(pod_uid(pid), container_id(pid)),
            )
            pods.append(PodRef(pod_uid(pid), "team-a", f"job-{pid}", {container_id(pid): "main"}))
    xml = root / "node.xml"
    xml.write_text(render_xml(gpus))
    return FakeNvml(gpus), StaticPodDirectory(pods), xml


def render_xml(gpus: list[FakeGpu]) -> str:
    """A `nvidia-smi -q -x` document (v12 element names) holding the same devices and processes."""
    parts = [
        '<?xml version="1.0" ?>\n<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">\n<nvidia_smi_log>\n'
    ]
    parts.append(f"<driver_version>550.54.15</driver_version><attached_gpus>{len(gpus)}</attached_gpus>\n")
    for index, gpu in enumerate(gpus):
        parts.append(
            f'<gpu id="00000000:{index:02x}:00.0"><product_name>{gpu.name}</product_name>'
            "<mig_mode><current_mig>Disabled</current_mig></mig_mode><mig_devices>None</mig_devices>"
            f"<uuid>{gpu.uuid}</uuid><fb_memory_usage><total>{gpu.memory_total_mib} MiB</total>"
            f"<used>{gpu.memory_used_mib} MiB</used></fb_memory_usage>"
            f"<utilization><gpu_util>{gpu.utilization[0]} %</gpu_util>"
            f"<memory_util>{gpu.utilization[1]} %</memory_util></utilization>"
            f"<temperature><gpu_temp>{gpu.temperature} C</gpu_temp></temperature>"
            f"<gpu_power_readings><power_draw>{gpu.power_mw / 1000:.2f} W</power_draw></gpu_power_readings>"
            f"<clocks><sm_clock>{gpu.sm_clock} MHz</sm_clock>"
            f"<mem_clock>{gpu.mem_clock} MHz</mem_clock></clocks>"
            "<processes>\n"
        )
        for proc in gpu.processes:
            parts.append(
                "<process_info><gpu_instance_id>N/A</gpu_instance_id><compute_instance_id>N/A</compute_instance_id>"
                f"<pid>{proc.pid}</pid><type>C</type><process_name>python</process_name>"
                f"<used_memory>{proc.used_mib} MiB</used_memory></process_info>\n"
            )
        parts.append("</processes></gpu>\n")
    parts.append("</nvidia_smi_log>\n")
    return "".join(parts)


def timed(call: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    call()
    return time.process_time() - cpu, time.perf_counter() - wall


class PrometheusClientRendering(PromCollector):
    """The same families through prometheus_client's `generate_latest`, the renderer we replaced."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        for family in snapshot_families(self.collector.snapshot, self.collector.health):
            if family.type == "counter":
                out: GaugeMetricFamily | CounterMetricFamily = CounterMetricFamily(
                    family.name.removesuffix("_total"), family.help, labels=list(family.labels)
                )
            else:
                out = GaugeMetricFamily(family.name, family.help, labels=list(family.labels))
            for values, value in family.samples:
                out.add_metric(list(values), value)
            yield out


def measure_collection(
    source: GpuSource, proc_root: Path, pods: StaticPodDirectory, rounds: int
) -> dict[str, float]:
    collector = Collector(source, ProcessTable(proc_root), pods)
    renderer = MetricsRenderer(collector.health)

    def one() -> None:
        renderer.render(collector.collect())

    cold_cpu, cold_wall = timed(one)
    collect_cpu = [timed(collector.collect)[0] for _ in range(rounds)]
    snapshot = collector.snapshot
    render_cpu = [timed(lambda: renderer.render(snapshot))[0] for _ in range(rounds)]
    both = [timed(one) for _ in range(rounds)]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PrometheusClientRendering(collector))
    library_cpu = [timed(lambda: generate_latest(registry))[0] for _ in range(rounds)]
    assert collector.snapshot is not None
    assert all(row.pod for row in collector.snapshot.processes), (
        "every process should be attributed to its pod"
    )
    return {
        "cold_cpu_ms": cold_cpu * 1000,
        "cold_wall_ms": cold_wall * 1000,
        "collect_cpu_ms": statistics.median(collect_cpu) * 1000,
        "render_cpu_ms": statistics.median(render_cpu) * 1000,
        "prometheus_client_render_cpu_ms": statistics.median(library_cpu) * 1000,
        "total_cpu_ms": statistics.median(c for c, _ in both) * 1000,
        "total_wall_ms": statistics.median(w for _, w in both) * 1000,
        "exposition_kib": len(renderer.render(collector.snapshot)) / 1024,
    }


def measure_scrapes(
    source: GpuSource, proc_root: Path, pods: StaticPodDirectory, scrapes: int
) -> dict[str, float]:
    exporter = GpuExporter(Collector(source, ProcessTable(proc_root), pods))
    exporter.collect_once()
    server = exporter.serve("127.0.0.1", 0)
    port = server.server_address[1]
    latencies = []
    try:
        for _ in range(scrapes):
            started = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/metrics")
            body = connection.getresponse().read()
            connection.close()
            latencies.append(time.perf_counter() - started)
            assert body == exporter.exposition
    finally:
        server.shutdown()
    latencies.sort()
    return {
        "scrape_p50_ms": statistics.median(latencies) * 1000,
        "scrape_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    rows = []
    for per_gpu in (100, 125):
        with tempfile.TemporaryDirectory() as tmp:
            nvml, pods, xml = build_node(Path(tmp), per_gpu)
            proc_root = Path(tmp) / "proc"
            xml_text = xml.read_bytes()
            parse_cpu = statistics.median(
                timed(lambda text=xml_text: parse_query_xml(text))[0] for _ in range(args.rounds)
            )
            for name, source in (("fake NVML", NvmlSource(nvml)), ("replay -q -x", ReplaySource(xml))):
                result = measure_collection(source, proc_root, pods, args.rounds)
                result.update(measure_scrapes(source, proc_root, pods, args.scrapes))
                result["xml_parse_cpu_ms"] = parse_cpu * 1000
                result["xml_kib"] = len(xml_text) / 1024
                rows.append((f"{GPUS}×{per_gpu} = {GPUS * per_gpu}", name, result))
    header = (
        "| processes | source | collect CPU | render CPU (prometheus_client) | collect+render CPU (wall) "
        "| cold CPU | scrape p50 / p99 | exposition | `-q -x` parse CPU (size) |"
    )
    print(header)
    print("|---|---|---|---|---|---|---|---|---|")
    for processes, source_name, r in rows:
        print(
            f"| {processes} | {source_name} | {r['collect_cpu_ms']:.1f} ms "
            f"| {r['render_cpu_ms']:.1f} ms ({r['prometheus_client_render_cpu_ms']:.1f} ms) "
            f"| {r['total_cpu_ms']:.1f} ms ({r['total_wall_ms']:.1f} ms) | {r['cold_cpu_ms']:.1f} ms "
            f"| {r['scrape_p50_ms']:.2f} / {r['scrape_p99_ms']:.2f} ms | {r['exposition_kib']:.0f} KiB "
            f"| {r['xml_parse_cpu_ms']:.1f} ms ({r['xml_kib']:.0f} KiB) |"
        )


if __name__ == "__main__":
    main()
