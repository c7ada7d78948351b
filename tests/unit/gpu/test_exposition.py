"""The text exposition writer, checked against prometheus_client's parser."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from astrago.gpu.exposition import LabelCache, MetricFamily, render, write_atomically


def test_label_values_are_escaped_and_parse_back() -> None:
    family = MetricFamily("gpu_process_info", "A process.", labels=("pid", "command"))
    command = 'python -c "print(\\"hi\\")"\nsecond line \\ end'
    family.add(("1", command), 1)
    counter = MetricFamily("x_errors_total", "Errors.", type="counter", labels=("stage",))
    counter.add(("source",), 2)
    (info, errors) = text_string_to_metric_families(render([family, counter]).decode())
    assert info.samples[0].labels == {"pid": "1", "command": command}
    assert info.samples[0].value == 1
    assert errors.type == "counter"
    assert errors.samples[0].value == 2


def test_shared_label_tuples_render_identically_in_every_family() -> None:
    labels = ("0", "1234")
    first = MetricFamily("a", "A.", labels=("gpu", "pid"))
    second = MetricFamily("b", "B.", labels=("gpu", "pid"))
    first.add(labels, 1.5)
    second.add(labels, 2.5)
    text = render([first, second]).decode()
    assert 'a{gpu="0",pid="1234"} 1.5\n' in text
    assert 'b{gpu="0",pid="1234"} 2.5\n' in text


@pytest.mark.parametrize(
    ("value", "text"), [(math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (3, "3")]
)
def test_special_values(value: float, text: str) -> None:
    family = MetricFamily("v", "V.")
    family.add((), value)
    assert render([family]).decode().endswith(f"v {text}\n")


@pytest.mark.parametrize(
    ("name", "kind", "labels"),
    [("1bad", "gauge", ()), ("ok", "histogram", ()), ("ok", "gauge", ("bad-label",)), ("ok", "counter", ())],
)
def test_bad_definitions_are_refused(name: str, kind: str, labels: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=r"bad|must end"):
        MetricFamily(name, "help", type=kind, labels=labels)


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "astrago_gpu.prom"
    target.write_bytes(b"old\n")
    write_atomically(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert os.listdir(tmp_path) == ["astrago_gpu.prom"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_label_cache_follows_changed_values_and_forgets_old_series() -> None:
    cache = LabelCache()

    def exposition(pod: str) -> str:
        family = MetricFamily("gpu_process_info", "A process.", labels=("pid", "pod"))
        family.add(("7", pod), 1)
        return render([family], cache).decode()

    assert 'pod=""' in exposition("")
    assert 'pod="trainer-0"' in exposition("trainer-0")  # the pod watcher learned the name
    assert 'pod="trainer-0"' in exposition("trainer-0")
    assert len(cache) == 1  # only the series of the last exposition are kept
