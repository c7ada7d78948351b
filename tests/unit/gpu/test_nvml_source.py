"""The NVML source against a fake NVML (no GPU on the test machines; see `fakes.py`)."""

from __future__ import annotations

import pynvml
import pytest

from astrago.gpu.model import GpuHealthSignals, ProcessKind, Slowdown, XidEvent
from astrago.gpu.sources.base import SourceUnavailable
from astrago.gpu.sources.nvml import NvmlSource
from tests.unit.gpu.fakes import FakeGpu, FakeNvml, FakeProcess, FakeSample, a100_mig_gpu


def test_missing_library_makes_the_source_unavailable() -> None:
    with pytest.raises(SourceUnavailable, match="Not Found"):
        NvmlSource(FakeNvml([], library_missing=True))


def test_device_values_are_converted_to_model_units() -> None:
    reading = NvmlSource(FakeNvml([FakeGpu(power_mw=312_500)])).read()
    (device,) = reading.devices
    assert device.model == "A100-SXM4-80GB"
    assert device.name == "NVIDIA A100-SXM4-80GB"
    assert (device.memory_total_mib, device.memory_used_mib) == (81920, 1024)
    assert (device.utilization_percent, device.memory_utilization_percent) == (50, 20)
    assert device.power_watts == pytest.approx(312.5)
    assert (device.sm_clock_mhz, device.memory_clock_mhz, device.temperature_celsius) == (1410, 1593, 40)
    assert device.driver_version == "550.54.15"
    assert not device.mig_enabled
    assert device.healthy


def test_a_pid_in_compute_and_graphics_lists_is_one_c_plus_g_process() -> None:
    gpu = FakeGpu(
        processes=[FakeProcess(10, 300, ("C", "G")), FakeProcess(11, 50, ("G",)), FakeProcess(12, 70, ("M",))]
    )
    reading = NvmlSource(FakeNvml([gpu])).read()
    kinds = {p.pid: p.kind for p in reading.processes}
    assert kinds == {10: ProcessKind.COMPUTE_GRAPHICS, 11: ProcessKind.GRAPHICS, 12: ProcessKind.MPS}
    assert len(reading.processes) == 3
    assert next(p for p in reading.processes if p.pid == 10).used_memory_bytes == 300 * 1024 * 1024


def test_utilization_keeps_newest_sample_per_pid_and_advances_last_seen() -> None:
    gpu = FakeGpu(
        processes=[FakeProcess(10), FakeProcess(11)],
        samples=[FakeSample(10, 1_000, 30, 5), FakeSample(10, 2_000, 80, 9), FakeSample(11, 500, 140, 1)],
    )
    nvml = FakeNvml([gpu])
    source = NvmlSource(nvml)
    first = {p.pid: p for p in source.read().processes}
    assert (first[10].sm_utilization_percent, first[10].memory_utilization_percent) == (80, 9)
    assert first[11].sm_utilization_percent == 100  # clamped
    gpu.samples.append(FakeSample(11, 3_000, 12, 2))
    second = {p.pid: p for p in source.read().processes}
    assert nvml.utilization_calls == [(0, 0), (0, 2_000)]
    assert second[10].sm_utilization_percent == 0  # running, no sample since the last reading
    assert second[11].sm_utilization_percent == 12


def test_mig_devices_are_gi_ci_pairs_with_uuid_profile_and_no_per_process_utilization() -> None:
    reading = NvmlSource(FakeNvml([a100_mig_gpu()])).read()
    (device,) = reading.devices
    assert device.mig_enabled
    assert device.utilization_percent is None  # NotSupported on a MIG-enabled GPU
    pairs = [(m.gpu_instance_id, m.compute_instance_id, m.profile) for m in device.mig_devices]
    assert pairs == [(2, 0, "3g.40gb"), (3, 0, "2g.20gb"), (9, 0, "1g.10gb")]  # the empty slot is skipped
    assert device.mig_devices[0].uuid == "MIG-aaaaaaaa-0000-0000-0000-000000000001"
    (proc,) = reading.processes
    assert proc.mig_key == (2, 0)
    assert proc.used_memory_bytes == 2000 * 1024 * 1024
    assert proc.sm_utilization_percent is None
    assert proc.memory_utilization_percent is None


def test_a_lost_gpu_is_reported_unhealthy_and_the_others_are_still_read() -> None:
    healthy = FakeGpu(uuid="GPU-1", processes=[FakeProcess(7)])
    flaky = FakeGpu(uuid="GPU-2", processes=[FakeProcess(8)])
    nvml = FakeNvml([healthy, flaky])
    source = NvmlSource(nvml)
    source.read()
    flaky.lost = True
    reading = source.read()
    assert [(d.index, d.healthy) for d in reading.devices] == [(0, True), (1, False)]
    assert reading.devices[1].uuid == "GPU-2"  # remembered from the last good reading
    assert [p.pid for p in reading.processes] == [7]
    assert [(e.stage, e.gpu_index) for e in reading.errors] == [("device", 1)]


def test_close_shuts_nvml_down_once() -> None:
    nvml = FakeNvml([FakeGpu()])
    source = NvmlSource(nvml)
    source.close()
    source.close()
    assert not nvml.initialised


def test_a_failing_process_list_is_reported_and_the_other_lists_still_read() -> None:
    gpu = FakeGpu(
        processes=[FakeProcess(10, lists=("C",)), FakeProcess(11, lists=("G",))],
        failing={
            "nvmlDeviceGetComputeRunningProcesses": pynvml.NVML_ERROR_UNKNOWN,
            "nvmlDeviceGetMPSComputeRunningProcesses": pynvml.NVML_ERROR_NOT_SUPPORTED,  # no MPS: fine
        },
    )
    reading = NvmlSource(FakeNvml([gpu])).read()
    assert [p.pid for p in reading.processes] == [11]
    assert [(e.stage, e.gpu_index) for e in reading.errors] == [("processes", 0)]
    assert reading.devices[0].healthy


def test_a_value_the_gpu_does_not_support_is_absent() -> None:
    gpu = FakeGpu(failing={"nvmlDeviceGetPowerUsage": pynvml.NVML_ERROR_NOT_SUPPORTED})
    reading = NvmlSource(FakeNvml([gpu])).read()
    assert reading.devices[0].power_watts is None
    assert reading.errors == []


@pytest.mark.parametrize(
    "error",
    [
        pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED),
        pynvml.NVMLLibraryMismatchError("535.43 bindings"),
    ],
)
def test_driver_trouble_at_start_makes_the_source_unavailable(error: Exception) -> None:
    class BrokenInit(FakeNvml):
        def nvmlInit(self) -> None:
            raise error

    with pytest.raises(SourceUnavailable):
        NvmlSource(BrokenInit([]))


def test_health_signals_are_read_and_unsupported_ones_stay_unknown() -> None:
    sick = FakeGpu(
        uuid="GPU-1",
        ecc_uncorrectable=3,
        retired_pages_pending=True,
        remapped_rows=(0, 2, True, False),
        throttle_reasons=pynvml.nvmlClocksThrottleReasonHwThermalSlowdown
        | pynvml.nvmlClocksThrottleReasonGpuIdle,
    )
    plain = FakeGpu(uuid="GPU-2")  # a GPU without ECC, page retirement, remapping or throttle reasons
    reading = NvmlSource(FakeNvml([sick, plain])).read()
    first, second = reading.health
    assert first == GpuHealthSignals(
        gpu_index=0,
        ecc_uncorrectable=3,
        retired_pages_pending=True,
        remapped_rows_pending=True,
        remapping_failed=False,
        slowdowns=frozenset({Slowdown.HW_THERMAL}),  # idle is no slowdown
    )
    assert second == GpuHealthSignals(gpu_index=1)
    assert reading.errors == []


def test_xid_events_are_reported_once_per_gpu_that_raised_them() -> None:
    nvml = FakeNvml([FakeGpu(uuid="GPU-1"), FakeGpu(uuid="GPU-2"), FakeGpu(uuid="GPU-3")])
    source = NvmlSource(nvml)
    assert source.read().events == []  # registers every GPU for Xid critical errors
    assert nvml.event_sets == {1: [0, 1, 2]}
    nvml.inject_xid(2, 79)
    nvml.inject_xid(0, 13)
    assert source.read().events == [XidEvent(gpu_index=2, xid=79), XidEvent(gpu_index=0, xid=13)]
    assert source.read().events == []  # drained: each event is reported once
    source.close()
    assert nvml.freed_event_sets == [1]


def test_a_gpu_without_event_support_is_still_read_and_not_asked_again() -> None:
    nvml = FakeNvml([FakeGpu(uuid="GPU-1", xid_events_supported=False), FakeGpu(uuid="GPU-2")])
    source = NvmlSource(nvml)
    first = source.read()
    assert first.errors == []  # NotSupported is "absent here", not a failure
    assert nvml.event_sets == {1: [1]}
    nvml.inject_xid(1, 48)
    assert source.read().events == [XidEvent(gpu_index=1, xid=48)]


def test_a_lost_gpu_reports_the_lost_signal() -> None:
    nvml = FakeNvml([FakeGpu(uuid="GPU-1"), FakeGpu(uuid="GPU-2")])
    source = NvmlSource(nvml)
    source.read()
    nvml.gpus[1].lost = True
    reading = source.read()
    assert [h.lost for h in reading.health] == [False, True]
    assert not reading.devices[1].healthy
