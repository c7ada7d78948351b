"""nvidia-smi output parsers on the project's own fixtures (tests/fixtures/gpu)."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrago.gpu.mig import apply_listing, profile_from_attributes, profile_from_name
from astrago.gpu.model import MIB, ProcessKind
from astrago.gpu.sources.smi_parsers import (
    SmiParseError,
    apply_pmon,
    mib,
    number,
    parse_compute_apps_csv,
    parse_gpu_csv,
    parse_list,
    parse_pmon,
    parse_query_text,
    parse_query_xml,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("53 C", 53.0),
        ("432.21 W", 432.21),
        ("N/A", None),
        ("[N/A]", None),
        ("Not available in WDDM driver model", None),
        ("[Requested functionality has been deprecated]", None),
        (None, None),
        ("-8 C", -8.0),
    ],
)
def test_number_reads_leading_values_and_unavailable_markers(
    text: str | None, expected: float | None
) -> None:
    assert number(text) == expected


def test_mib_converts_units() -> None:
    assert (mib("2296 MiB"), mib("2 GiB"), mib("[N/A]")) == (2296, 2048, None)


def test_xml_reads_devices_mig_and_processes(gpu_fixtures: Path) -> None:
    reading = parse_query_xml((gpu_fixtures / "two-gpus-mig.xml").read_bytes())
    whole, split = reading.devices
    assert (whole.index, whole.uuid, whole.model, whole.memory_total_mib) == (
        0,
        "GPU-11111111-1111-1111-1111-111111111111",
        "A100-SXM4-80GB",
        81920,
    )  # index is the position, not <minor_number>
    assert (whole.utilization_percent, whole.memory_utilization_percent, whole.power_watts) == (87, 41, 301.5)
    assert split.mig_enabled
    assert split.utilization_percent is None
    assert [
        (m.index, m.gpu_instance_id, m.compute_instance_id, m.memory_total_mib) for m in split.mig_devices
    ] == [
        (0, 1, 0, 40192),
        (1, 5, 0, 9728),
    ]
    assert all(m.uuid is None and m.profile is None for m in split.mig_devices)  # the XML has neither
    by_pid = {p.pid: p for p in reading.processes}
    assert by_pid[1002].kind is ProcessKind.COMPUTE_GRAPHICS
    assert by_pid[2001].mig_key == (1, 0)
    assert by_pid[1001].used_memory_bytes == 10000 * MIB


def test_listing_adds_mig_uuids_and_profiles_by_mig_index(gpu_fixtures: Path) -> None:
    reading = parse_query_xml((gpu_fixtures / "two-gpus-mig.xml").read_bytes())
    joined = apply_listing(reading, parse_list((gpu_fixtures / "two-gpus-mig.list.txt").read_text()))
    migs = joined.devices[1].mig_devices
    assert [(m.profile, m.uuid) for m in migs] == [
        ("3g.40gb", "MIG-22222222-0000-0000-0000-000000000001"),
        ("1g.10gb", "MIG-22222222-0000-0000-0000-000000000002"),
    ]


def test_pmon_gives_newest_sample_and_nothing_on_mig(gpu_fixtures: Path) -> None:
    reading = parse_query_xml((gpu_fixtures / "two-gpus-mig.xml").read_bytes())
    samples = parse_pmon((gpu_fixtures / "two-gpus-mig.pmon.txt").read_text())
    by_pid = {p.pid: p for p in apply_pmon(reading, samples).processes}
    assert (by_pid[1001].sm_utilization_percent, by_pid[1001].memory_utilization_percent) == (75, 35)
    assert by_pid[1002].sm_utilization_percent == 0  # running, "-": no sample in the period
    assert by_pid[2001].sm_utilization_percent is None  # MIG: not measurable, so absent


def test_text_query_matches_the_xml(gpu_fixtures: Path) -> None:
    xml = parse_query_xml((gpu_fixtures / "two-gpus-mig.xml").read_bytes())
    text = parse_query_text((gpu_fixtures / "capture" / "busy__query-q.txt").read_text())
    assert [(d.uuid, d.memory_total_mib, d.memory_used_mib, d.mig_enabled) for d in text.devices] == [
        (d.uuid, d.memory_total_mib, d.memory_used_mib, d.mig_enabled) for d in xml.devices
    ]
    assert [(m.gpu_instance_id, m.memory_total_mib) for m in text.devices[1].mig_devices] == [
        (1, 40192),
        (5, 9728),
    ]
    assert sorted((p.pid, p.kind, p.mig_key, p.used_memory_bytes) for p in text.processes) == sorted(
        (p.pid, p.kind, p.mig_key, p.used_memory_bytes) for p in xml.processes
    )


def test_text_query_with_no_processes(gpu_fixtures: Path) -> None:
    reading = parse_query_text((gpu_fixtures / "capture" / "idle__query-q.txt").read_text())
    assert len(reading.devices) == 1
    assert reading.processes == []


def test_csv_queries(gpu_fixtures: Path) -> None:
    devices = parse_gpu_csv((gpu_fixtures / "query-gpu.csv").read_text())
    assert [(d.index, d.memory_total_mib, d.utilization_percent, d.mig_enabled) for d in devices] == [
        (0, 81920, 87, False),
        (1, 81920, None, True),
    ]
    processes = parse_compute_apps_csv((gpu_fixtures / "query-compute-apps.csv").read_text(), devices)
    by_pid = {p.pid: p for p in processes}
    assert by_pid[1001].name == "python train.py --lr 0.1, --tag a"  # a quoted comma stays in the name
    assert by_pid[1003].used_memory_bytes is None
    assert by_pid[2001].gpu_index == 1
    assert by_pid[2001].mig_key is None


def test_compute_apps_naming_an_unknown_gpu_is_an_error(gpu_fixtures: Path) -> None:
    with pytest.raises(SmiParseError, match="GPU-11111111"):
        parse_compute_apps_csv((gpu_fixtures / "query-compute-apps.csv").read_text(), [])


@pytest.mark.parametrize("bad", ["<html/>", "not xml at all"])
def test_xml_parser_rejects_other_documents(bad: str) -> None:
    with pytest.raises(SmiParseError):
        parse_query_xml(bad)


def test_list_parser_rejects_other_text() -> None:
    with pytest.raises(SmiParseError):
        parse_list("No devices were found\n")


def test_profiles_from_name_and_attributes() -> None:
    assert profile_from_name("NVIDIA A100-SXM4-40GB MIG 1g.5gb") == "1g.5gb"
    assert profile_from_name("NVIDIA A100-SXM4-40GB") is None
    assert profile_from_attributes(3, 3, 40448) == "3g.40gb"
    assert profile_from_attributes(3, 1, 40448) == "1c.3g.40gb"
