"""The Prometheus text exposition format (0.0.4), written directly for fixed label sets.

prometheus_client's `generate_latest` validates and escapes every label *name* of every sample; with 800
processes × 5 series × 10 labels that is most of a collection's CPU (measured in benchmarks/gpu). Our label
names are constants, checked once here, and the rendered label pairs of a series are kept from one
exposition to the next (GPU processes mostly outlive a collection interval)."""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def escape_label_value(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


@dataclass(slots=True)
class MetricFamily:
    """One metric: its HELP, TYPE, label names and samples (label values in label-name order, value)."""

    name: str
    help: str
    type: str = "gauge"
    labels: tuple[str, ...] = ()
    samples: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _METRIC_NAME.match(self.name) or self.type not in ("gauge", "counter"):
            raise ValueError(f"bad metric {self.name!r} of type {self.type!r}")
        if self.type == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name!r} must end in _total")
        for label in self.labels:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"bad label name {label!r} on {self.name}")

    def add(self, values: tuple[str, ...], value: float) -> None:
        self.samples.append((values, value))

    def render(self, out: list[str], cache: LabelCache) -> None:
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.type}\n")
        if not self.labels:
            out.extend(f"{self.name} {format_value(value)}\n" for _, value in self.samples)
            return
        prefix = self.name + "{"
        for values, value in self.samples:
            out.append(f"{prefix}{cache.pairs(self.labels, values)}}} {format_value(value)}\n")


class LabelCache:
    """Rendered `name="value",...` strings by (label names, label values). Each exposition keeps only the
    entries it used, so the cache is as large as one exposition's series, never larger."""

    def __init__(self) -> None:
        self._previous: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}
        self._current: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}

    def pairs(self, names: tuple[str, ...], values: tuple[str, ...]) -> str:
        key = (names, values)
        rendered = self._current.get(key)
        if rendered is None:
            rendered = self._previous.get(key)
            if rendered is None:
                rendered = ",".join(
                    f'{name}="{escape_label_value(value)}"' for name, value in zip(names, values, strict=True)
                )
            self._current[key] = rendered
        return rendered

    def next_exposition(self) -> None:
        self._previous, self._current = self._current, {}

    def __len__(self) -> int:
        """Label sets kept from the last exposition."""
        return len(self._previous)


def render(families: Iterable[MetricFamily], cache: LabelCache | None = None) -> bytes:
    cache = cache if cache is not None else LabelCache()
    out: list[str] = []
    for family in families:
        family.render(out, cache)
    cache.next_exposition()
    return "".join(out).encode()


def write_atomically(target: Path, content: bytes) -> None:
    """Write to a temporary file in the same directory, then rename over the target: a reader (node-exporter's
    textfile collector) sees the old file or the new one, never half of one. The temporary name does not end
    in `.prom`, so the collector ignores it."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.chmod(temporary, 0o644)  # node-exporter may run as another user
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
