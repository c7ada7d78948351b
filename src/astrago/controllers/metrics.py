"""What the controllers measure about themselves (exported on the server's /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.cycle_seconds = Histogram(
            "astrago_scheduling_cycle_seconds",
            "Time of one scheduling cycle: snapshot, engine, and writing its decisions.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )

    def observe_cycle(self, seconds: float) -> None:
        self.cycle_seconds.observe(seconds)
