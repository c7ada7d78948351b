import { describe, expect, it } from "vitest";

import { hours, usedText, type UsageRow } from "../../api/usage";
import { renderWithTheme } from "../../test/render";
import UsageChart, { toBars } from "./UsageChart";

const row = (key: string, gpu: number, used: number | null, measured = used == null ? 0 : gpu): UsageRow => ({
  key,
  gpu_hours: gpu,
  gpu_hours_used: used,
  gpu_hours_measured: measured,
  cpu_core_hours: 4,
  memory_gib_hours: 16,
  allocations: 1,
});

describe("usage report", () => {
  it("draws allocated GPU-hours for every row and used ones only where measured (no bar of 0 for unknown)", () => {
    expect(toBars([row("ml-a", 12, 4.8), row("ml-b", 6, null)])).toEqual([
      { key: "ml-a", allocated: 12, used: 4.8 },
      { key: "ml-b", allocated: 6 },
    ]);
  });

  it("says unknown where no utilisation was measured, and what share of the measured part was used", () => {
    expect(usedText(row("ml-b", 6, null))).toBe("unknown");
    expect(usedText(row("cpu-only", 0, null))).toBe("—");
    expect(usedText(row("ml-a", 12, 4.8))).toBe(`${hours(4.8)} (40%)`);
    expect(usedText(row("total", 18, 4.8, 12))).toBe(`${hours(4.8)} (40% of measured)`);
  });

  it("renders the chart with its title", () => {
    const view = renderWithTheme(<UsageChart title="GPU-hours per workspace" rows={[row("ml-a", 12, 4.8)]} />);
    expect(view.getByTestId("usage-chart").getAttribute("aria-label")).toBe("GPU-hours per workspace");
  });
});
