"""NVML through `nvidia-ml-py` (module `pynvml`), in process, initialised once.

Every call that can fail on one GPU is caught per device: a lost GPU is reported unhealthy and the
others are still read. Per-process utilization keeps one `lastSeen` timestamp (microseconds) per GPU so
each reading holds the samples since the previous one."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pynvml

from astrago.gpu.mig import profile_from_attributes, profile_from_name
from astrago.gpu.model import (
    MIB,
    GpuDevice,
    GpuHealthSignals,
    GpuProcess,
    MigDevice,
    ProcessKind,
    Slowdown,
    SourceError,
    SourceReading,
    XidEvent,
    clamp_percent,
    merge_duplicate_processes,
)
from astrago.gpu.sources.base import SourceFailed, SourceUnavailable

T = TypeVar("T")

# Errors meaning "this value does not exist here" rather than "this GPU is broken".
_ABSENT = {
    pynvml.NVML_ERROR_NOT_SUPPORTED,
    pynvml.NVML_ERROR_NOT_FOUND,
    pynvml.NVML_ERROR_NO_PERMISSION,
    pynvml.NVML_ERROR_FUNCTION_NOT_FOUND,
    pynvml.NVML_ERROR_NO_DATA,
}
# A process list that does not exist here (MPS on an old driver) is no error; any other failure is reported.
_LIST_UNSUPPORTED = {pynvml.NVML_ERROR_NOT_SUPPORTED, pynvml.NVML_ERROR_FUNCTION_NOT_FOUND}
_PROCESS_LISTS: tuple[tuple[str, str], ...] = (
    ("C", "nvmlDeviceGetComputeRunningProcesses"),
    ("G", "nvmlDeviceGetGraphicsRunningProcesses"),
    ("M", "nvmlDeviceGetMPSComputeRunningProcesses"),
)
# Clock event (throttle) reason bits that mean the GPU is slowed down against its will.
_SLOWDOWN_BITS: tuple[tuple[int, Slowdown], ...] = (
    (pynvml.nvmlClocksThrottleReasonHwSlowdown, Slowdown.HW),
    (pynvml.nvmlClocksThrottleReasonHwThermalSlowdown, Slowdown.HW_THERMAL),
    (pynvml.nvmlClocksThrottleReasonHwPowerBrakeSlowdown, Slowdown.HW_POWER_BRAKE),
    (pynvml.nvmlClocksThrottleReasonSwThermalSlowdown, Slowdown.SW_THERMAL),
)
# At most this many Xid events are taken per reading: a GPU in an error storm must not stall collection.
_MAX_EVENTS_PER_READING = 256


@dataclass(frozen=True, slots=True)
class _StaticInfo:
    uuid: str | None
    name: str
    memory_total_mib: int


class NvmlSource:
    """`nvml` is the `pynvml` module, or in tests a fake exposing the same functions and raising
    `pynvml`'s own error classes."""

    name = "nvml"

    def __init__(self, nvml: Any = None) -> None:
        self._nvml: Any = nvml if nvml is not None else importlib.import_module("pynvml")
        try:
            self._nvml.nvmlInit()
        except pynvml.NVMLLibraryMismatchError as exc:  # not an NVMLError subclass
            raise SourceUnavailable(f"NVML library mismatch: {exc}") from exc
        except (pynvml.NVMLError, OSError) as exc:
            raise SourceUnavailable(f"NVML is not usable here: {exc}") from exc
        self._initialised = True
        self._last_seen_us: dict[int, int] = {}
        self._static: dict[int, _StaticInfo] = {}
        self._driver_version = self._optional(self._nvml.nvmlSystemGetDriverVersion)
        self._event_set: Any = None
        self._xid_registered: set[int] = set()

    def close(self) -> None:
        if self._initialised:
            self._initialised = False
            if self._event_set is not None:
                with contextlib.suppress(pynvml.NVMLError):
                    self._nvml.nvmlEventSetFree(self._event_set)
                self._event_set = None
            # shutting down a driver that went away leaves nothing to clean up
            with contextlib.suppress(pynvml.NVMLError):
                self._nvml.nvmlShutdown()

    def read(self) -> SourceReading:
        reading = SourceReading()
        try:
            count = int(self._nvml.nvmlDeviceGetCount())
        except pynvml.NVMLError as exc:
            raise SourceFailed(f"NVML could not count GPUs: {exc}") from exc
        for index in range(count):
            try:
                device, processes = self._read_device(index, reading.errors)
            except pynvml.NVMLError as exc:
                reading.errors.append(SourceError("device", str(exc), index))
                reading.devices.append(self._unhealthy(index))
                lost = exc.value == pynvml.NVML_ERROR_GPU_IS_LOST
                reading.health.append(GpuHealthSignals(gpu_index=index, lost=lost))
                continue
            reading.devices.append(device)
            reading.processes.extend(processes)
            reading.health.append(self._health(index, reading.errors))
            self._watch_xids(index, reading.errors)
        reading.events.extend(self._drain_xids(reading.errors))
        return reading

    # -- health ----------------------------------------------------------------------------------------

    def _health(self, index: int, errors: list[SourceError]) -> GpuHealthSignals:
        """ECC, page retirement, row remapping and slowdowns; what a GPU does not support stays `None`."""
        nvml = self._nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            ecc = self._optional(
                lambda: nvml.nvmlDeviceGetTotalEccErrors(
                    handle, pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC
                )
            )
            pending_pages = self._optional(lambda: nvml.nvmlDeviceGetRetiredPagesPendingStatus(handle))
            remapped = self._optional(lambda: nvml.nvmlDeviceGetRemappedRows(handle))
            reasons = self._optional(lambda: nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle))
        except pynvml.NVMLError as exc:
            lost = exc.value == pynvml.NVML_ERROR_GPU_IS_LOST
            if not lost:
                errors.append(SourceError("health", str(exc), index))
            return GpuHealthSignals(gpu_index=index, lost=lost)
        slowdowns = frozenset(
            slowdown for bit, slowdown in _SLOWDOWN_BITS if reasons is not None and int(reasons) & bit
        )
        return GpuHealthSignals(
            gpu_index=index,
            ecc_uncorrectable=int(ecc) if ecc is not None else None,
            retired_pages_pending=bool(pending_pages) if pending_pages is not None else None,
            # (correctable rows, uncorrectable rows, pending, failure occurred)
            remapped_rows_pending=bool(remapped[2]) if remapped is not None else None,
            remapping_failed=bool(remapped[3]) if remapped is not None else None,
            slowdowns=slowdowns,
        )

    def _watch_xids(self, index: int, errors: list[SourceError]) -> None:
        """Register the GPU for Xid critical-error events once (GPUs that do not support events are noted
        once and not asked again)."""
        if index in self._xid_registered:
            return
        self._xid_registered.add(index)
        nvml = self._nvml
        try:
            if self._event_set is None:
                self._event_set = nvml.nvmlEventSetCreate()
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            nvml.nvmlDeviceRegisterEvents(handle, pynvml.nvmlEventTypeXidCriticalError, self._event_set)
        except pynvml.NVMLError as exc:
            if exc.value not in _ABSENT:
                errors.append(SourceError("events", f"Xid events cannot be watched: {exc}", index))

    def _drain_xids(self, errors: list[SourceError]) -> list[XidEvent]:
        """Xid errors queued since the last reading, without waiting (timeout 0)."""
        if self._event_set is None:
            return []
        nvml = self._nvml
        events: list[XidEvent] = []
        while len(events) < _MAX_EVENTS_PER_READING:
            try:
                data = nvml.nvmlEventSetWait_v2(self._event_set, 0)
            except pynvml.NVMLError as exc:
                if exc.value != pynvml.NVML_ERROR_TIMEOUT:  # TIMEOUT: nothing (more) queued
                    errors.append(SourceError("events", f"reading Xid events: {exc}"))
                break
            if int(data.eventType) != pynvml.nvmlEventTypeXidCriticalError:
                continue
            try:
                index = int(nvml.nvmlDeviceGetIndex(data.device))
            except pynvml.NVMLError as exc:
                errors.append(SourceError("events", f"Xid {int(data.eventData)} on an unknown GPU: {exc}"))
                continue
            events.append(XidEvent(gpu_index=index, xid=int(data.eventData)))
        return events

    def _unhealthy(self, index: int) -> GpuDevice:
        known = self._static.get(index, _StaticInfo(None, "unknown", 0))
        return GpuDevice(
            index=index,
            uuid=known.uuid,
            name=known.name,
            memory_total_mib=known.memory_total_mib,
            healthy=False,
            driver_version=self._driver_version,
        )

    def _read_device(self, index: int, errors: list[SourceError]) -> tuple[GpuDevice, list[GpuProcess]]:
        nvml = self._nvml
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        static = _StaticInfo(
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            name=_text(nvml.nvmlDeviceGetName(handle)),
            memory_total_mib=int(memory.total) // MIB,
        )
        self._static[index] = static
        rates = self._optional(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
        mig_mode = self._optional(lambda: nvml.nvmlDeviceGetMigMode(handle))
        mig_enabled = bool(mig_mode and mig_mode[0] == pynvml.NVML_DEVICE_MIG_ENABLE)
        power_mw = self._optional(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
        sm_clock = self._optional(lambda: nvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM))
        mem_clock = self._optional(lambda: nvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM))
        temperature = self._optional(
            lambda: nvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
        )
        if mig_enabled:
            migs, processes = self._read_mig_devices(index, handle, errors)
        else:
            migs, processes = [], self._read_processes(index, handle, None, errors)
            processes = self._with_utilization(index, handle, processes, errors)
        device = GpuDevice(
            index=index,
            uuid=static.uuid,
            name=static.name,
            memory_total_mib=static.memory_total_mib,
            memory_used_mib=int(memory.used) // MIB,
            mig_devices=migs,
            mig_enabled=mig_enabled,
            utilization_percent=clamp_percent(rates.gpu) if rates is not None else None,
            memory_utilization_percent=clamp_percent(rates.memory) if rates is not None else None,
            temperature_celsius=float(temperature) if temperature is not None else None,
            power_watts=power_mw / 1000.0 if power_mw is not None else None,
            sm_clock_mhz=float(sm_clock) if sm_clock is not None else None,
            memory_clock_mhz=float(mem_clock) if mem_clock is not None else None,
            driver_version=self._driver_version,
        )
        return device, processes

    def _read_mig_devices(
        self, index: int, handle: Any, errors: list[SourceError]
    ) -> tuple[list[MigDevice], list[GpuProcess]]:
        """Per-process memory on MIG comes from the MIG device handles; utilization does not exist there."""
        nvml = self._nvml
        migs: list[MigDevice] = []
        processes: list[GpuProcess] = []
        for slot in range(int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))):
            try:
                mig_handle = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            except pynvml.NVMLError_NotFound:
                continue  # an empty slot
            try:
                gi = int(nvml.nvmlDeviceGetGpuInstanceId(mig_handle))
                ci = int(nvml.nvmlDeviceGetComputeInstanceId(mig_handle))
                memory = nvml.nvmlDeviceGetMemoryInfo(mig_handle)
                mig = MigDevice(
                    index=len(migs),
                    gpu_instance_id=gi,
                    compute_instance_id=ci,
                    uuid=_text(nvml.nvmlDeviceGetUUID(mig_handle)),
                    profile=self._mig_profile(mig_handle, int(memory.total) // MIB),
                    memory_total_mib=int(memory.total) // MIB,
                    memory_used_mib=int(memory.used) // MIB,
                )
            except pynvml.NVMLError as exc:
                errors.append(SourceError("mig", f"MIG device {slot}: {exc}", index))
                continue
            migs.append(mig)
            processes.extend(self._read_processes(index, mig_handle, (gi, ci), errors))
        return migs, processes

    def _mig_profile(self, mig_handle: Any, memory_mib: int) -> str | None:
        name = self._optional(lambda: _text(self._nvml.nvmlDeviceGetName(mig_handle)))
        if name and (profile := profile_from_name(name)):
            return profile
        attributes = self._optional(lambda: self._nvml.nvmlDeviceGetAttributes(mig_handle))
        if attributes is None:
            return None
        return profile_from_attributes(
            int(attributes.gpuInstanceSliceCount), int(attributes.computeInstanceSliceCount), memory_mib
        )

    def _read_processes(
        self, index: int, handle: Any, mig: tuple[int, int] | None, errors: list[SourceError]
    ) -> list[GpuProcess]:
        found: list[GpuProcess] = []
        for kind, function in _PROCESS_LISTS:
            try:
                entries = getattr(self._nvml, function)(handle)
            except pynvml.NVMLError as exc:
                if exc.value not in _LIST_UNSUPPORTED:
                    errors.append(SourceError("processes", f"{function}: {exc}", index))
                continue
            for entry in entries:
                used = getattr(entry, "usedGpuMemory", None)
                found.append(
                    GpuProcess(
                        pid=int(entry.pid),
                        gpu_index=index,
                        kind=ProcessKind(kind),
                        name="",
                        used_memory_bytes=int(used) if used is not None else None,
                        gpu_instance_id=mig[0] if mig else None,
                        compute_instance_id=mig[1] if mig else None,
                    )
                )
        return merge_duplicate_processes(found)

    def _with_utilization(
        self, index: int, handle: Any, processes: list[GpuProcess], errors: list[SourceError]
    ) -> list[GpuProcess]:
        """Newest sample per PID since the last reading; 0 for a running PID with no sample in the period."""
        last_seen = self._last_seen_us.get(index, 0)
        try:
            samples = self._nvml.nvmlDeviceGetProcessUtilization(handle, last_seen)
        except pynvml.NVMLError as exc:
            # NOT_FOUND: no sample newer than lastSeen. pynvml raises NVMLError(SUCCESS) for an empty buffer.
            if exc.value in (pynvml.NVML_ERROR_NOT_FOUND, pynvml.NVML_SUCCESS):
                samples = []
            else:
                if exc.value not in _ABSENT:
                    errors.append(SourceError("utilization", str(exc), index))
                return processes
        newest: dict[int, Any] = {}
        for sample in samples:
            seen = newest.get(int(sample.pid))
            if seen is None or sample.timeStamp > seen.timeStamp:
                newest[int(sample.pid)] = sample
        if newest:
            self._last_seen_us[index] = max(last_seen, *(int(s.timeStamp) for s in newest.values()))
        result = []
        for proc in processes:
            sample = newest.get(proc.pid)
            sm = clamp_percent(sample.smUtil) if sample is not None else 0.0
            mem = clamp_percent(sample.memUtil) if sample is not None else 0.0
            result.append(
                GpuProcess(  # the constructor, not dataclasses.replace: this runs per process per collection
                    pid=proc.pid,
                    gpu_index=proc.gpu_index,
                    kind=proc.kind,
                    name=proc.name,
                    used_memory_bytes=proc.used_memory_bytes,
                    gpu_instance_id=proc.gpu_instance_id,
                    compute_instance_id=proc.compute_instance_id,
                    sm_utilization_percent=sm,
                    memory_utilization_percent=mem,
                )
            )
        return result

    def _optional(self, call: Callable[[], T]) -> T | None:
        try:
            return call()
        except pynvml.NVMLError as exc:
            if exc.value in _ABSENT:
                return None
            raise


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
