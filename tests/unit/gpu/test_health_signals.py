"""Health signals (ECC, retired pages, remapped rows, slowdowns) from nvidia-smi outputs: the recorded ones in
../shared/data/gpu (all healthy machines) and edited copies of their sections that turn a signal on."""

from __future__ import annotations

from pathlib import Path

from astrago.gpu.model import GpuHealthSignals, Slowdown
from astrago.gpu.sources import ReplaySource
from astrago.gpu.sources.smi_parsers import parse_query_text, parse_query_xml

H100 = "utkuozdemir_nvidia_gpu_exporter/split/linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01"


def test_recorded_h100_text_output_reports_a_healthy_gpu_with_ecc_and_remapping(shared_data: Path) -> None:
    reading = ReplaySource(shared_data / "gpu" / H100, state="load").read()
    assert reading.health == [
        GpuHealthSignals(
            gpu_index=0,
            ecc_uncorrectable=0,
            retired_pages_pending=None,  # "N/A" on Hopper: row remapping replaced page retirement
            remapped_rows_pending=False,
            remapping_failed=False,
        )
    ]


def test_text_output_with_pending_remap_uncorrectable_ecc_and_thermal_slowdown(shared_data: Path) -> None:
    text = (shared_data / "gpu" / H100 / "load__query-q.txt").read_text()
    edited = (
        text.replace(
            "            HW Thermal Slowdown                        : Not Active",
            "            HW Thermal Slowdown                        : Active",
        )
        .replace("        Pending                                        : No", "        Pending : Yes", 1)
        .replace(
            "            DRAM Uncorrectable                         : 0",
            "            DRAM Uncorrectable : 2",
            1,
        )
    )
    (signals,) = parse_query_text(edited).health
    assert signals.remapped_rows_pending is True
    assert signals.ecc_uncorrectable == 2  # the volatile counter, not the aggregate one
    assert signals.slowdowns == frozenset({Slowdown.HW_THERMAL})


def test_recorded_xml_outputs_of_consumer_and_old_cards_report_unknown_not_fine(shared_data: Path) -> None:
    reading = ReplaySource(shared_data / "gpu" / "influxdata_telegraf" / "gtx-1660-ti.xml").read()
    assert reading.health == [GpuHealthSignals(gpu_index=0)]  # no ECC, no retirement, no remapping


def test_xml_throttle_reasons_and_pending_retirement(shared_data: Path) -> None:
    text = (shared_data / "gpu" / "GuanceCloud_datakit" / "gtx-1card.xml").read_text()
    assert "<clocks_throttle_reason_hw_slowdown>Not Active<" in text
    edited = text.replace(
        "<clocks_throttle_reason_hw_slowdown>Not Active<", "<clocks_throttle_reason_hw_slowdown>Active<"
    ).replace("<pending_blacklist>No<", "<pending_blacklist>Yes<")
    (signals,) = parse_query_xml(edited).health
    assert signals.slowdowns == frozenset({Slowdown.HW})
    assert signals.retired_pages_pending is True
    assert signals.ecc_uncorrectable == 0
