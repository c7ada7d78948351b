import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { formatBytes, formatPercent } from "../../lib/format";
import { renderWithTheme } from "../../test/render";
import GpuCharts, { toRows } from "./GpuCharts";

const point = (at: string, util: number | null, memory: number | null) => ({
  at, gpu_util_percent: util, gpu_util_peak_percent: util, memory_used_bytes: memory, memory_peak_bytes: memory,
});

describe("GPU charts", () => {
  it("put each series in its own column by time and leave unknown values out (a gap, never 0)", () => {
    const rows = toRows(
      [
        { label: "replica 0 · GPU 1", points: [point("2026-12-02T01:00:00Z", 20, 1), point("2026-12-02T01:00:10Z", null, 2)] },
        { label: "replica 1 · GPU 3", points: [point("2026-12-02T01:00:10Z", 70, 3)] },
      ],
      (p) => p.gpu_util_percent,
    );
    expect(rows.map((r) => [r.at, r["replica 0 · GPU 1"], r["replica 1 · GPU 3"]])).toEqual([
      ["2026-12-02T01:00:00Z", 20, undefined],
      ["2026-12-02T01:00:10Z", undefined, 70],
    ]);
  });

  it("say that MIG utilisation is not attributable instead of drawing 0", () => {
    renderWithTheme(<GpuCharts title="GPU use" series={[{ label: "GPU 0", points: [point("2026-12-02T01:00:00Z", null, 2 ** 30)] }]} />);
    expect(screen.getByText(/Not attributable/)).toBeTruthy();
    expect(screen.getByText("GPU memory (GiB)")).toBeTruthy();
  });

  it("format bytes and percentages, unknown as a dash", () => {
    expect(formatBytes(3 * 2 ** 30)).toBe("3.0 GiB");
    expect(formatBytes(null)).toBe("—");
    expect(formatPercent(44.6)).toBe("45%");
    expect(formatPercent(null)).toBe("—");
  });
});
