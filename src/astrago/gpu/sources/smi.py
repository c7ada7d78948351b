"""`nvidia-smi` as a fallback source, every call under a timeout.

One reading runs `-q -x` (devices, MIG devices, every process with its GI/CI and type), `-L` (MIG UUIDs and
profiles) and `pmon -c 1` (per-process utilization). If `-q -x` fails or hangs, the CSV queries give devices
and compute processes. `nvidia-smi` can take seconds and hang in D state, so the collector runs it on its own
timer, never while serving a scrape."""

from __future__ import annotations

import contextlib
import shutil
import subprocess

from astrago.gpu.mig import apply_listing
from astrago.gpu.model import SourceError, SourceReading
from astrago.gpu.sources.base import SourceFailed, SourceUnavailable
from astrago.gpu.sources.smi_parsers import (
    COMPUTE_APPS_FIELDS,
    GPU_QUERY_FIELDS,
    SmiParseError,
    apply_pmon,
    parse_compute_apps_csv,
    parse_gpu_csv,
    parse_list,
    parse_pmon,
    parse_query_xml,
)


class SmiCommandError(RuntimeError):
    pass


class SmiSource:
    name = "smi"

    def __init__(self, binary: str = "nvidia-smi", timeout_s: float = 10.0) -> None:
        path = shutil.which(binary)
        if path is None:
            raise SourceUnavailable(f"{binary} is not on PATH")
        self._binary = path
        self._timeout_s = timeout_s

    def close(self) -> None:
        """Nothing stays open between readings."""

    def read(self) -> SourceReading:
        try:
            reading = parse_query_xml(self.run("-q", "-x"))
        except (SmiCommandError, SmiParseError) as exc:
            reading = self._read_csv()
            reading.errors.insert(0, SourceError("command", f"nvidia-smi -q -x: {exc}; used the CSV queries"))
        try:
            reading = apply_listing(reading, parse_list(self.run("-L")))
        except (SmiCommandError, SmiParseError) as exc:
            reading.errors.append(SourceError("mig", f"nvidia-smi -L: {exc}"))
        try:
            reading = apply_pmon(reading, parse_pmon(self.run("pmon", "-c", "1", "-s", "u")))
        except (SmiCommandError, SmiParseError) as exc:
            reading.errors.append(SourceError("utilization", f"nvidia-smi pmon: {exc}"))
        return reading

    def _read_csv(self) -> SourceReading:
        try:
            devices = parse_gpu_csv(self.run(f"--query-gpu={','.join(GPU_QUERY_FIELDS)}", "--format=csv"))
            apps = self.run(f"--query-compute-apps={','.join(COMPUTE_APPS_FIELDS)}", "--format=csv")
            return SourceReading(devices=devices, processes=parse_compute_apps_csv(apps, devices))
        except (SmiCommandError, SmiParseError) as exc:
            raise SourceFailed(f"nvidia-smi gave no usable output: {exc}") from exc

    def run(self, *args: str) -> str:
        """Run nvidia-smi; kill it after the timeout. A child stuck in D state cannot be reaped at once, so
        after the kill it is given one more second and then abandoned rather than blocking the collector."""
        process = subprocess.Popen(
            [self._binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            out, err = process.communicate(timeout=self._timeout_s)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.communicate(timeout=1.0)
            raise SmiCommandError(f"timed out after {self._timeout_s:g} s") from exc
        if process.returncode != 0:
            message = (err or out).strip().splitlines()
            raise SmiCommandError(f"exit {process.returncode}: {message[-1] if message else 'no output'}")
        return out
