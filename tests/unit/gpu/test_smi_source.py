"""The nvidia-smi source, running a stand-in `nvidia-smi` script that prints the project's fixtures (there is
no NVIDIA driver here). FAKE_SMI_MODE makes `-q -x` fail or hang to exercise the fallback and the timeout."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from astrago.gpu.sources.base import SourceFailed, SourceUnavailable
from astrago.gpu.sources.smi import SmiSource

SCRIPT = """#!/bin/sh
F={fixtures}
case "$1" in
  -q) case "$FAKE_SMI_MODE" in
        fail) echo "Unable to determine the device handle for GPU0000:0F:00.0: Unknown Error" >&2; exit 15;;
        hang) exec sleep 30;;
      esac
      cat "$F/two-gpus-mig.xml";;
  -L) cat "$F/two-gpus-mig.list.txt";;
  pmon) cat "$F/two-gpus-mig.pmon.txt";;
  --query-gpu=*) [ "$FAKE_SMI_MODE" = allfail ] && exit 9; cat "$F/query-gpu.csv";;
  --query-compute-apps=*) cat "$F/query-compute-apps.csv";;
  *) echo "unexpected arguments: $*" >&2; exit 2;;
esac
"""


@pytest.fixture
def fake_smi(tmp_path: Path, gpu_fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "bin" / "nvidia-smi"
    script.parent.mkdir()
    script.write_text(SCRIPT.format(fixtures=gpu_fixtures))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    return script


def test_missing_binary_makes_the_source_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SourceUnavailable):
        SmiSource()


def test_xml_listing_and_pmon_are_joined(fake_smi: Path) -> None:
    reading = SmiSource().read()
    assert reading.errors == []
    assert [m.profile for m in reading.devices[1].mig_devices] == ["3g.40gb", "1g.10gb"]
    by_pid = {p.pid: p for p in reading.processes}
    assert by_pid[1001].sm_utilization_percent == 75
    assert by_pid[2001].mig_key == (1, 0)
    assert by_pid[2001].sm_utilization_percent is None


def test_csv_queries_stand_in_when_xml_fails(fake_smi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SMI_MODE", "fail")
    reading = SmiSource().read()
    assert [e.stage for e in reading.errors] == ["command"]
    assert "exit 15" in reading.errors[0].message
    assert len(reading.devices) == 2
    assert {p.pid for p in reading.processes} == {1001, 1003, 2001}


def test_a_hanging_nvidia_smi_is_killed_after_the_timeout(
    fake_smi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SMI_MODE", "hang")
    reading = SmiSource(timeout_s=0.5).read()
    assert "timed out after 0.5 s" in reading.errors[0].message
    assert len(reading.devices) == 2


def test_nothing_usable_fails_the_reading(fake_smi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SMI_MODE", "allfail")
    fake_smi.write_text(
        fake_smi.read_text().replace(
            '  -q) case "$FAKE_SMI_MODE" in', '  -q) exit 3; case "$FAKE_SMI_MODE" in'
        )
    )
    with pytest.raises(SourceFailed, match="no usable output"):
        SmiSource().read()
