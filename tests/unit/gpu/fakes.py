"""A fake NVML with the functions of `pynvml` that the NVML source calls.

There is no GPU on the machines that run these tests, so NVML is exercised through this fake behind the same
interface: same function names and argument order, same result shapes (objects with `pid`,
`usedGpuMemory`, `timeStamp`, ...), and `pynvml`'s own error classes, raised where the real library raises
them (NotFound for an empty MIG slot or no utilization sample, NotSupported on MIG, GpuIsLost)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

MIB = 1024 * 1024


@dataclass
class FakeProcess:
    pid: int
    used_mib: int | None = 100
    lists: tuple[str, ...] = ("C",)  # any of "C", "G", "M"


@dataclass
class FakeSample:
    pid: int
    timestamp_us: int
    sm: int
    mem: int


@dataclass
class FakeMig:
    gi: int
    ci: int
    profile: str
    memory_total_mib: int
    memory_used_mib: int = 0
    uuid: str = ""
    processes: list[FakeProcess] = field(default_factory=list)


@dataclass
class FakeGpu:
    name: str = "NVIDIA A100-SXM4-80GB"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    memory_total_mib: int = 81920
    memory_used_mib: int = 1024
    utilization: tuple[int, int] = (50, 20)
    temperature: int = 40
    power_mw: int = 250_000
    sm_clock: int = 1410
    mem_clock: int = 1593
    processes: list[FakeProcess] = field(default_factory=list)
    samples: list[FakeSample] = field(default_factory=list)
    migs: list[FakeMig | None] | None = None  # None: MIG disabled; a None entry is an empty slot
    lost: bool = False
    failing: dict[str, int] = field(default_factory=dict)  # NVML function name → error code it raises
    # Health: None = not supported by this GPU (NVML raises NotSupported).
    ecc_uncorrectable: int | None = None
    retired_pages_pending: bool | None = None
    remapped_rows: tuple[int, int, bool, bool] | None = None  # (corr, unc, pending, failure occurred)
    throttle_reasons: int | None = None
    xid_events_supported: bool = True


class FakeNvml:
    """Holds GPUs; tests change them between readings. `calls` records utilization timestamps asked for."""

    NVMLError = pynvml.NVMLError

    def __init__(self, gpus: list[FakeGpu], *, library_missing: bool = False) -> None:
        self.gpus = gpus
        self.library_missing = library_missing
        self.utilization_calls: list[tuple[int, int]] = []
        self.initialised = False
        self.event_sets: dict[int, list[int]] = {}  # event set id → GPU indices registered for Xids
        self.freed_event_sets: list[int] = []
        self.pending_xids: list[tuple[int, int]] = []  # (GPU index, Xid) queued in the driver

    def inject_xid(self, gpu_index: int, xid: int) -> None:
        """The driver reports an Xid on a GPU: it reaches every event set that GPU is registered with."""
        self.pending_xids.append((gpu_index, xid))

    # --- library
    def nvmlInit(self) -> None:
        if self.library_missing:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    # --- handles: ("gpu", index) or ("mig", index, slot)
    def nvmlDeviceGetHandleByIndex(self, index: int) -> tuple[Any, ...]:
        if self.gpus[index].lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return ("gpu", index)

    def _gpu(self, handle: tuple[Any, ...]) -> FakeGpu:
        gpu = self.gpus[handle[1]]
        if gpu.lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return gpu

    def _mig(self, handle: tuple[Any, ...]) -> FakeMig | None:
        if handle[0] != "mig":
            return None
        migs = self._gpu(handle).migs or []
        return migs[handle[2]]

    def nvmlDeviceGetName(self, handle: tuple[Any, ...]) -> str:
        mig = self._mig(handle)
        gpu = self._gpu(handle)
        return f"{gpu.name} MIG {mig.profile}" if mig else gpu.name

    def nvmlDeviceGetUUID(self, handle: tuple[Any, ...]) -> str:
        mig = self._mig(handle)
        return mig.uuid if mig else self._gpu(handle).uuid

    def nvmlDeviceGetMemoryInfo(self, handle: tuple[Any, ...]) -> SimpleNamespace:
        mig = self._mig(handle)
        if mig:
            return SimpleNamespace(total=mig.memory_total_mib * MIB, used=mig.memory_used_mib * MIB)
        gpu = self._gpu(handle)
        return SimpleNamespace(total=gpu.memory_total_mib * MIB, used=gpu.memory_used_mib * MIB)

    def nvmlDeviceGetUtilizationRates(self, handle: tuple[Any, ...]) -> SimpleNamespace:
        gpu = self._gpu(handle)
        if gpu.migs is not None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return SimpleNamespace(gpu=gpu.utilization[0], memory=gpu.utilization[1])

    def nvmlDeviceGetTemperature(self, handle: tuple[Any, ...], sensor: int) -> int:
        return self._gpu(handle).temperature

    def nvmlDeviceGetPowerUsage(self, handle: tuple[Any, ...]) -> int:
        self._fail_if_asked(handle, "nvmlDeviceGetPowerUsage")
        return self._gpu(handle).power_mw

    def nvmlDeviceGetClockInfo(self, handle: tuple[Any, ...], clock: int) -> int:
        gpu = self._gpu(handle)
        return gpu.sm_clock if clock == pynvml.NVML_CLOCK_SM else gpu.mem_clock

    def nvmlDeviceGetMigMode(self, handle: tuple[Any, ...]) -> list[int]:
        enabled = self._gpu(handle).migs is not None
        return [int(enabled), int(enabled)]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: tuple[Any, ...]) -> int:
        return len(self._gpu(handle).migs or [])

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: tuple[Any, ...], slot: int) -> tuple[Any, ...]:
        migs = self._gpu(handle).migs or []
        if migs[slot] is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return ("mig", handle[1], slot)

    def nvmlDeviceGetGpuInstanceId(self, handle: tuple[Any, ...]) -> int:
        mig = self._mig(handle)
        assert mig is not None
        return mig.gi

    def nvmlDeviceGetComputeInstanceId(self, handle: tuple[Any, ...]) -> int:
        mig = self._mig(handle)
        assert mig is not None
        return mig.ci

    # --- health
    def _supported(self, value: Any) -> Any:
        if value is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value

    def nvmlDeviceGetIndex(self, handle: tuple[Any, ...]) -> int:
        return int(handle[1])

    def nvmlDeviceGetTotalEccErrors(self, handle: tuple[Any, ...], error_type: int, counter: int) -> int:
        assert (error_type, counter) == (pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC)
        return int(self._supported(self._gpu(handle).ecc_uncorrectable))

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle: tuple[Any, ...]) -> int:
        return int(self._supported(self._gpu(handle).retired_pages_pending))

    def nvmlDeviceGetRemappedRows(self, handle: tuple[Any, ...]) -> tuple[int, int, int, int]:
        corr, unc, pending, failed = self._supported(self._gpu(handle).remapped_rows)
        return (corr, unc, int(pending), int(failed))

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: tuple[Any, ...]) -> int:
        return int(self._supported(self._gpu(handle).throttle_reasons))

    def nvmlEventSetCreate(self) -> int:
        set_id = len(self.event_sets) + 1
        self.event_sets[set_id] = []
        return set_id

    def nvmlEventSetFree(self, event_set: int) -> None:
        self.freed_event_sets.append(event_set)

    def nvmlDeviceRegisterEvents(self, handle: tuple[Any, ...], types: int, event_set: int) -> None:
        gpu = self._gpu(handle)
        if not gpu.xid_events_supported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        assert types == pynvml.nvmlEventTypeXidCriticalError
        self.event_sets[event_set].append(int(handle[1]))

    def nvmlEventSetWait_v2(self, event_set: int, timeout_ms: int) -> SimpleNamespace:
        registered = self.event_sets[event_set]
        for position, (index, xid) in enumerate(self.pending_xids):
            if index in registered:
                del self.pending_xids[position]
                return SimpleNamespace(
                    device=("gpu", index),
                    eventType=pynvml.nvmlEventTypeXidCriticalError,
                    eventData=xid,
                    gpuInstanceId=0xFFFFFFFF,
                    computeInstanceId=0xFFFFFFFF,
                )
        raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT)

    def _fail_if_asked(self, handle: tuple[Any, ...], function: str) -> None:
        code = self._gpu(handle).failing.get(function)
        if code is not None:
            raise pynvml.NVMLError(code)

    def _processes(self, handle: tuple[Any, ...], kind: str) -> list[SimpleNamespace]:
        function = {"C": "nvmlDeviceGetComputeRunningProcesses", "G": "nvmlDeviceGetGraphicsRunningProcesses"}
        self._fail_if_asked(handle, function.get(kind, "nvmlDeviceGetMPSComputeRunningProcesses"))
        mig = self._mig(handle)
        procs = mig.processes if mig else self._gpu(handle).processes
        return [
            SimpleNamespace(
                pid=p.pid,
                usedGpuMemory=None if p.used_mib is None else p.used_mib * MIB,
                gpuInstanceId=mig.gi if mig else 0xFFFFFFFF,
                computeInstanceId=mig.ci if mig else 0xFFFFFFFF,
            )
            for p in procs
            if kind in p.lists
        ]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: tuple[Any, ...]) -> list[SimpleNamespace]:
        return self._processes(handle, "C")

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: tuple[Any, ...]) -> list[SimpleNamespace]:
        return self._processes(handle, "G")

    def nvmlDeviceGetMPSComputeRunningProcesses(self, handle: tuple[Any, ...]) -> list[SimpleNamespace]:
        return self._processes(handle, "M")

    def nvmlDeviceGetProcessUtilization(
        self, handle: tuple[Any, ...], last_seen: int
    ) -> list[SimpleNamespace]:
        gpu = self._gpu(handle)
        self.utilization_calls.append((handle[1], last_seen))
        if gpu.migs is not None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        newer = [s for s in gpu.samples if s.timestamp_us > last_seen]
        if not newer:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return [
            SimpleNamespace(
                pid=s.pid, timeStamp=s.timestamp_us, smUtil=s.sm, memUtil=s.mem, encUtil=0, decUtil=0
            )
            for s in newer
        ]


def a100_mig_gpu(**overrides: Any) -> FakeGpu:
    """An A100-80GB split into 3g.40gb + 2g.20gb + an empty slot + 1g.10gb, one process on the 3g."""
    migs: list[FakeMig | None] = [
        FakeMig(
            2,
            0,
            "3g.40gb",
            40192,
            2048,
            "MIG-aaaaaaaa-0000-0000-0000-000000000001",
            [FakeProcess(4001, 2000)],
        ),
        FakeMig(3, 0, "2g.20gb", 19968, 0, "MIG-aaaaaaaa-0000-0000-0000-000000000002"),
        None,
        FakeMig(9, 0, "1g.10gb", 9728, 0, "MIG-aaaaaaaa-0000-0000-0000-000000000003"),
    ]
    return FakeGpu(migs=migs, **overrides)
