// The usage report's bar chart (Mantine charts over recharts), loaded on demand by pages/Usage.tsx so the
// chart library is not part of the first page's JavaScript.
import "@mantine/charts/styles.css";

import { BarChart } from "@mantine/charts";

import type { UsageRow } from "../../api/usage";

export interface UsageBar {
  key: string;
  allocated: number;
  used?: number; // left out where unknown: no bar, never a bar of 0
}

/** One bar group per row: GPU-hours allocated, and used where any utilisation was measured. */
export function toBars(rows: UsageRow[]): UsageBar[] {
  return rows.map((r) => ({
    key: r.key,
    allocated: r.gpu_hours,
    ...(r.gpu_hours_used == null ? {} : { used: r.gpu_hours_used }),
  }));
}

export default function UsageChart({ rows, title }: { rows: UsageRow[]; title: string }) {
  return (
    <div data-testid="usage-chart" aria-label={title}>
      <BarChart
        h={260}
        data={toBars(rows)}
        dataKey="key"
        series={[
          { name: "allocated", label: "GPU-hours allocated", color: "blue.6" },
          { name: "used", label: "GPU-hours used", color: "teal.6" },
        ]}
        valueFormatter={(v) => v.toFixed(2)}
        withLegend
      />
    </div>
  );
}
