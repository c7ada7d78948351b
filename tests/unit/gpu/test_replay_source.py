"""The replay source: XML files, capture directories and single capture files."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrago.gpu.sources import ReplayError, ReplaySource, SourceFailed, open_source
from astrago.gpu.sources.replay import section_slug, split_capture


def test_capture_directory_defaults_to_the_last_state(gpu_fixtures: Path) -> None:
    source = ReplaySource(gpu_fixtures / "capture")
    assert source.states() == ["busy", "idle"]  # name order in a directory
    reading = source.read()
    assert [d.index for d in reading.devices] == [0]  # "idle" is last by name
    busy = ReplaySource(gpu_fixtures / "capture", state="busy").read()
    assert busy.devices[1].mig_devices[0].profile == "3g.40gb"  # -L joined from the capabilities state
    by_pid = {p.pid: p for p in busy.processes}
    assert by_pid[1001].sm_utilization_percent == 75  # pmon of the same state
    assert by_pid[2001].sm_utilization_percent is None


def test_unknown_state_names_the_ones_there(gpu_fixtures: Path) -> None:
    with pytest.raises(ReplayError, match="busy, idle"):
        ReplaySource(gpu_fixtures / "capture", state="load")


def test_missing_path_and_unreadable_content_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="does not exist"):
        open_source(f"replay:{tmp_path / 'nope.xml'}")
    (tmp_path / "junk.xml").write_text("<html></html>")
    with pytest.raises(ReplayError, match=r"junk\.xml"):
        ReplaySource(tmp_path / "junk.xml")
    with pytest.raises(ReplayError, match="query-q"):
        ReplaySource(tmp_path)


def test_single_capture_file_is_split_by_its_banners(tmp_path: Path, gpu_fixtures: Path) -> None:
    rule = "#" * 80
    sections = [
        ("capabilities", "list (-L)", "nvidia-smi -L", gpu_fixtures / "two-gpus-mig.list.txt"),
        ("load", "query (-q)", "nvidia-smi -q", gpu_fixtures / "capture" / "busy__query-q.txt"),
        (
            "load",
            "pmon (per-process monitor)",
            "nvidia-smi pmon -c 5",
            gpu_fixtures / "two-gpus-mig.pmon.txt",
        ),
    ]
    text = "# header\ncollected_at: now\n\n"
    for state, title, command, path in sections:
        text += f"\n{rule}\n# {state} :: {title}\n# $ {command}\n{rule}\n{path.read_text()}\n"
    capture = tmp_path / "linux-x86_64__test__550.txt"
    capture.write_text(text)
    assert set(split_capture(text)) == {
        ("capabilities", "list-l"),
        ("load", "query-q"),
        ("load", "pmon-per-process-monitor"),
    }
    reading = ReplaySource(capture).read()
    assert len(reading.devices) == 2
    assert reading.devices[1].mig_devices[1].profile == "1g.10gb"


def test_section_slugs_match_split_file_names() -> None:
    assert section_slug("query (-q)") == "query-q"
    assert (
        section_slug("query-gpu field list (derived, used for query-gpu above)")
        == "query-gpu-field-list-derived-used-for-qu"
    )


def test_open_source_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown GPU source"):
        open_source("dcgm")


def test_a_file_broken_after_start_fails_the_reading_not_the_exporter(
    tmp_path: Path, gpu_fixtures: Path
) -> None:
    recording = tmp_path / "host.xml"
    recording.write_bytes((gpu_fixtures / "two-gpus-mig.xml").read_bytes())
    source = ReplaySource(recording)
    recording.write_text("<nvidia_smi_log")
    with pytest.raises(SourceFailed, match=r"host\.xml"):
        source.read()
