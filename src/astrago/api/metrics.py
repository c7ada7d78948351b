"""The server's Prometheus exposition: platform gauges read from the store at scrape time, plus what the
controllers measure (cycle time)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from astrago.services.nodes import PlatformGauges


class _GaugeCollector(Collector):
    def __init__(self, gauges: PlatformGauges) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        workloads = GaugeMetricFamily(
            "astrago_workloads", "Workloads by state and workspace.", labels=["state", "workspace"]
        )
        for state, workspace, count in sorted(self.gauges.workloads):
            workloads.add_metric([state, workspace], count)
        yield workloads
        yield GaugeMetricFamily(
            "astrago_queue_length", "Workloads waiting to be admitted.", self.gauges.queue_length
        )
        yield GaugeMetricFamily(
            "astrago_gpus", "GPUs on schedulable nodes (capacity).", self.gauges.gpus_total
        )
        yield GaugeMetricFamily(
            "astrago_gpus_allocated",
            "GPUs allocated to workloads (fractional shares count as fractions).",
            self.gauges.gpus_allocated_milli / 1000,
        )
        workload_gpus = GaugeMetricFamily(
            "astrago_workload_gpus",
            "The share of a GPU a live workload holds (1 = the whole GPU), per GPU.",
            labels=["workload", "name", "workspace", "node", "gpu"],
        )
        for workload_id, name, workspace, node, gpu, milli in self.gauges.workload_gpus:
            workload_gpus.add_metric([workload_id, name, workspace, node, str(gpu)], milli / 1000)
        yield workload_gpus
        yield from self._health()

    def _health(self) -> Iterator[Metric]:
        health = GaugeMetricFamily(
            "astrago_gpu_health",
            "GPUs that are not healthy (1 per GPU): state unhealthy (fenced: no new work) or degraded.",
            labels=["node", "gpu", "state", "cause"],
        )
        for node, gpu, state, cause in sorted(self.gauges.gpu_health):
            health.add_metric([node, str(gpu), state, cause], 1)
        yield health
        gpu_cordons = GaugeMetricFamily(
            "astrago_gpu_cordoned", "GPUs an admin cordoned (1 per GPU).", labels=["node", "gpu"]
        )
        for node, gpu in self.gauges.gpu_cordons:
            gpu_cordons.add_metric([node, str(gpu)], 1)
        yield gpu_cordons
        node_cordons = GaugeMetricFamily(
            "astrago_node_cordoned", "Nodes an admin cordoned (1 per node).", labels=["node"]
        )
        for node in self.gauges.node_cordons:
            node_cordons.add_metric([node], 1)
        yield node_cordons
        yield GaugeMetricFamily(
            "astrago_gpus_fenced",
            "GPUs that take no new work: unhealthy, cordoned, or on a cordoned node.",
            self.gauges.gpus_fenced,
        )


def render_metrics(gauges: PlatformGauges, controller_registry: CollectorRegistry) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_GaugeCollector(gauges))
    return generate_latest(registry) + generate_latest(controller_registry)
