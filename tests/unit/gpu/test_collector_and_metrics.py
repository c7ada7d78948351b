"""Collector attribution and the exposition it renders; NVML through the fake (no GPU on test machines)."""

from __future__ import annotations

import gzip
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from astrago.gpu.collector import Collector
from astrago.gpu.exporter import GpuExporter, parse_listen
from astrago.gpu.kube import NodePodWatcher, PodRef, StaticPodDirectory, pod_ref
from astrago.gpu.metrics import TEXTFILE_NAME, MetricsRenderer
from astrago.gpu.model import SourceReading
from astrago.gpu.procfs import ProcessTable
from astrago.gpu.sources.base import SourceFailed
from astrago.gpu.sources.nvml import NvmlSource
from tests.unit.gpu.fakes import FakeGpu, FakeNvml, FakeProcess, FakeSample, a100_mig_gpu
from tests.unit.gpu.proc_tree import FakeProc, systemd_containerd

UID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
CID = "f" * 64


def _samples(exposition: bytes) -> dict[str, list[Sample]]:
    by_name: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(exposition.decode()):
        for sample in family.samples:
            by_name.setdefault(sample.name, []).append(sample)
    return by_name


@pytest.fixture
def node(tmp_path: Path) -> tuple[FakeNvml, FakeProc, Collector]:
    """Two GPUs: GPU 0 whole with a pod process and a host process, GPU 1 in MIG mode."""
    whole = FakeGpu(
        uuid="GPU-0",
        processes=[FakeProcess(100, 4096), FakeProcess(200, 512, ("C", "G"))],
        samples=[FakeSample(100, 10, 90, 40)],
    )
    nvml = FakeNvml([whole, a100_mig_gpu(uuid="GPU-1")])
    proc = FakeProc(tmp_path)
    proc.add(100, ["python", "train.py"], systemd_containerd(UID, CID))
    proc.add(200, ["/usr/bin/Xorg", ":0"], "0::/system.slice/display-manager.service\n")
    pods = StaticPodDirectory([PodRef(UID, "team-a", "trainer-0", {CID: "main"})])
    return nvml, proc, Collector(NvmlSource(nvml), ProcessTable(tmp_path), pods)


def test_processes_are_attributed_to_pods_and_host(node: tuple[FakeNvml, FakeProc, Collector]) -> None:
    _, _, collector = node
    rows = {row.process.pid: row for row in collector.collect().processes}
    pod = rows[100]
    assert (pod.namespace, pod.pod, pod.container, pod.container_id, pod.command) == (
        "team-a",
        "trainer-0",
        "main",
        CID,
        "python train.py",
    )
    host = rows[200]
    assert (host.namespace, host.pod, host.container, host.pod_uid) == ("", "", "", "")
    mig = rows[4001]  # not in the fake /proc: labels stay empty, command from the driver
    assert not mig.in_proc
    assert mig.mig is not None
    assert mig.mig.profile == "3g.40gb"


def test_exposition_has_seed_metrics_without_duplicates_or_mig_utilization(
    node: tuple[FakeNvml, FakeProc, Collector],
) -> None:
    _, _, collector = node
    samples = _samples(MetricsRenderer(collector.health).render(collector.collect()))
    series = [(name, tuple(sorted(s.labels.items()))) for name, group in samples.items() for s in group]
    assert len(series) == len(set(series))
    info = {s.labels["pid"]: s.labels for s in samples["gpu_process_info"]}
    assert info["100"]["pod"] == "trainer-0"
    assert info["100"]["namespace"] == "team-a"
    assert info["200"]["type"] == "C+G"
    assert info["4001"]["mig_profile"] == "3g.40gb"
    assert info["4001"]["gpu_instance_id"] == "2"
    utilization = {s.labels["pid"]: s.value for s in samples["gpu_process_utilization"]}
    assert utilization == {"100": 90.0, "200": 0.0}  # absent for the MIG process, not 0
    bandwidth = {s.labels["pid"]: s.value for s in samples["gpu_process_memory_utilization"]}
    assert bandwidth == {"100": 40.0, "200": 0.0}
    ratio = {s.labels["pid"]: s.value for s in samples["gpu_process_memory_used_ratio"]}
    assert ratio["4001"] == pytest.approx(2000 / 40192)  # share of its MIG device, not of the GPU
    sessions = {(s.labels["gpu"], s.labels["mig_profile"]): s.value for s in samples["gpu_sessions"]}
    assert sessions == {("0", ""): 2, ("1", "3g.40gb"): 1, ("1", "2g.20gb"): 0, ("1", "1g.10gb"): 0}
    assert samples["gpu_total_sessions"][0].value == 3


def test_a_process_on_several_gpus_is_one_session_node_wide(tmp_path: Path) -> None:
    gpus = [FakeGpu(uuid=f"GPU-{i}", processes=[FakeProcess(37305)]) for i in range(8)]
    collector = Collector(NvmlSource(FakeNvml(gpus)), ProcessTable(tmp_path))
    samples = _samples(MetricsRenderer(collector.health).render(collector.collect()))
    assert samples["gpu_total_sessions"][0].value == 1
    assert len(samples["gpu_process_info"]) == 8


def test_dead_pids_disappear_from_the_next_exposition(node: tuple[FakeNvml, FakeProc, Collector]) -> None:
    nvml, proc, collector = node
    renderer = MetricsRenderer(collector.health)
    renderer.render(collector.collect())
    nvml.gpus[0].processes = [p for p in nvml.gpus[0].processes if p.pid != 100]
    proc.remove(100)
    samples = _samples(renderer.render(collector.collect()))
    for name in ("gpu_process_info", "gpu_process_memory_used_bytes", "gpu_process_utilization"):
        assert all(s.labels["pid"] != "100" for s in samples[name]), name
    assert len(collector.processes) == 1  # the cache forgot PID 100 as well


def test_a_failed_collection_clears_devices_and_counts_the_error(tmp_path: Path) -> None:
    class Broken:
        name = "smi"

        def read(self) -> SourceReading:
            raise SourceFailed("nvidia-smi timed out after 10 s")

        def close(self) -> None:
            pass

    collector = Collector(Broken(), ProcessTable(tmp_path))
    snapshot = collector.collect()
    assert not snapshot.ok
    samples = _samples(MetricsRenderer(collector.health).render(snapshot))
    assert "gpu_info" not in samples
    errors = {s.labels["stage"]: s.value for s in samples["gpu_exporter_collection_errors_total"]}
    assert errors["source"] == 1
    assert "gpu_exporter_last_success_timestamp_seconds" not in samples
    assert samples["gpu_exporter_collections_total"][0].value == 1


def test_textfile_is_written_by_rename_with_no_leftovers(
    node: tuple[FakeNvml, FakeProc, Collector], tmp_path: Path
) -> None:
    _, _, collector = node
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    exporter = GpuExporter(collector, textfiles)
    exporter.collect_once()
    exporter.collect_once()
    assert [p.name for p in textfiles.iterdir()] == [TEXTFILE_NAME]
    assert "gpu_process_info" in _samples((textfiles / TEXTFILE_NAME).read_bytes())


def test_scrapes_serve_the_snapshot_and_never_collect(node: tuple[FakeNvml, FakeProc, Collector]) -> None:
    _, _, collector = node
    exporter = GpuExporter(collector)
    exporter.collect_once()
    server = exporter.serve("127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        for _ in range(3):
            with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
                assert response.headers["Content-Type"].startswith("text/plain")
                body = response.read()
        assert body == exporter.exposition
        assert collector.health.collections == 1
        request = urllib.request.Request(f"{url}/metrics", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(response.read()) == exporter.exposition
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{url}/nope", timeout=5)
    finally:
        server.shutdown()


def test_run_collects_on_its_interval_until_stopped(node: tuple[FakeNvml, FakeProc, Collector]) -> None:
    _, _, collector = node
    exporter = GpuExporter(collector)
    stop = threading.Event()
    thread = threading.Thread(target=exporter.run, args=(0.01, stop))
    thread.start()
    while collector.health.collections < 3:
        stop.wait(0.01)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:9835", ("127.0.0.1", 9835)), (":9100", ("0.0.0.0", 9100)), ("[::1]:80", ("::1", 80))],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["9835", "host:port", "1.2.3.4:99999"])
def test_parse_listen_rejects_bad_values(value: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(value)


def test_pod_watcher_events_keep_only_this_nodes_pods() -> None:
    watcher = NodePodWatcher(client=None, node="gpu-1")
    pod = {
        "metadata": {"uid": UID, "namespace": "team-a", "name": "trainer-0"},
        "spec": {"nodeName": "gpu-1"},
        "status": {"containerStatuses": [{"name": "main", "containerID": f"containerd://{CID}"}]},
    }
    watcher.apply("ADDED", pod)
    watcher.apply("ADDED", {**pod, "metadata": {"uid": "other", "name": "x"}, "spec": {"nodeName": "gpu-2"}})
    ref = watcher.pod(UID)
    assert ref is not None
    assert ref.container_name(CID) == "main"
    assert watcher.pod("other") is None
    watcher.apply("DELETED", pod)
    assert watcher.pod(UID) is None
    assert pod_ref({"metadata": {}}) is None


def test_a_failing_pod_watch_backs_off_and_shows_in_the_metrics(tmp_path: Path) -> None:
    class Forbidden:
        """A client whose every list fails, as with missing RBAC (the API server answers 403)."""

        def __init__(self) -> None:
            self.calls = 0

        def list(self, *args: object, **kwargs: object) -> list[object]:
            self.calls += 1
            raise PermissionError('pods is forbidden: cannot list resource "pods"')

        def close(self) -> None:
            pass

    client = Forbidden()
    watcher = NodePodWatcher(client, "gpu-1", retry_s=0.01, max_retry_s=0.02)
    watcher.start()
    try:
        deadline = time.monotonic() + 10
        while watcher.failures < 3:  # the third try comes after two (growing) back-off waits
            assert time.monotonic() < deadline, "the watcher stopped retrying"
            time.sleep(0.01)
        assert not watcher.is_current()
        collector = Collector(NvmlSource(FakeNvml([FakeGpu()])), ProcessTable(tmp_path), watcher)
        samples = _samples(MetricsRenderer(collector.health).render(collector.collect()))
        assert samples["gpu_exporter_pod_watch_up"][0].value == 0
    finally:
        watcher.stop()


def test_without_a_cluster_there_is_no_pod_watch_metric(node: tuple[FakeNvml, FakeProc, Collector]) -> None:
    nvml, _, _ = node
    collector = Collector(NvmlSource(nvml))
    assert "gpu_exporter_pod_watch_up" not in _samples(
        MetricsRenderer(collector.health).render(collector.collect())
    )


def test_gpu_faults_are_exported_and_xids_counted(tmp_path: Path) -> None:
    import pynvml

    sick = FakeGpu(
        uuid="GPU-0",
        ecc_uncorrectable=2,
        remapped_rows=(0, 1, True, False),
        throttle_reasons=pynvml.nvmlClocksThrottleReasonSwThermalSlowdown,
    )
    plain = FakeGpu(uuid="GPU-1")  # no ECC, no remapping, no reasons: no samples, never a 0 that lies
    nvml = FakeNvml([sick, plain])
    collector = Collector(NvmlSource(nvml), ProcessTable(tmp_path))
    renderer = MetricsRenderer(collector.health)
    renderer.render(collector.collect())
    nvml.inject_xid(0, 79)
    nvml.inject_xid(0, 79)
    nvml.inject_xid(1, 13)
    samples = _samples(renderer.render(collector.collect()))
    assert [(s.labels["gpu"], s.value) for s in samples["gpu_ecc_uncorrectable_errors"]] == [("0", 2)]
    assert [(s.labels["gpu"], s.value) for s in samples["gpu_memory_repair_pending"]] == [("0", 1)]
    assert [(s.labels["gpu"], s.labels["reason"]) for s in samples["gpu_slowdown"]] == [("0", "sw_thermal")]
    xids = {(s.labels["gpu"], s.labels["xid"]): s.value for s in samples["gpu_xid_errors_total"]}
    assert xids == {("0", "79"): 2, ("1", "13"): 1}
    samples = _samples(renderer.render(collector.collect()))  # a counter: it keeps its count
    assert {s.value for s in samples["gpu_xid_errors_total"]} == {2, 1}
