// The GPU charts (Mantine charts over recharts). Loaded on demand by GpuUsage.tsx, so the chart library is
// not part of the first page's JavaScript.
import "@mantine/charts/styles.css";

import { LineChart } from "@mantine/charts";
import { Stack, Text } from "@mantine/core";

import type { GpuUsagePoint } from "../../api/client";
import { formatBytes } from "../../lib/format";

export interface Series {
  /** "replica 0 · GPU 2" or "GPU 2" */
  label: string;
  points: GpuUsagePoint[];
}

const COLORS = ["blue.6", "teal.6", "orange.6", "grape.6", "red.6", "cyan.6", "lime.6", "pink.6"];
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

/** One row per time with a column per series; a missing value stays missing (a gap, not 0). */
export function toRows(series: Series[], value: (p: GpuUsagePoint) => number | null | undefined) {
  const byTime = new Map<string, Record<string, number | string>>();
  for (const s of series) {
    for (const p of s.points) {
      const row = byTime.get(p.at) ?? { at: p.at, time: clock.format(new Date(p.at)) };
      const v = value(p);
      if (v != null) row[s.label] = v;
      byTime.set(p.at, row);
    }
  }
  return [...byTime.values()].sort((a, b) => String(a.at).localeCompare(String(b.at)));
}

export default function GpuCharts({ series, title }: { series: Series[]; title: string }) {
  const lines = series.map((s, i) => ({ name: s.label, color: COLORS[i % COLORS.length] }));
  const utilisation = toRows(series, (p) => p.gpu_util_percent);
  const memory = toRows(series, (p) => (p.memory_used_bytes == null ? null : p.memory_used_bytes / 2 ** 30));
  const hasUtilisation = series.some((s) => s.points.some((p) => p.gpu_util_percent != null));
  return (
    <Stack gap="xs" data-testid="gpu-charts" aria-label={title}>
      <Text size="sm" fw={600}>GPU utilisation (%)</Text>
      {hasUtilisation ? (
        <LineChart
          h={180}
          data={utilisation}
          dataKey="time"
          series={lines}
          yAxisProps={{ domain: [0, 100] }}
          withDots={false}
          connectNulls={false}
          curveType="linear"
          valueFormatter={(v) => `${Math.round(v)}%`}
          withLegend={lines.length > 1}
        />
      ) : (
        <Text size="sm" c="dimmed">Not attributable: no utilisation per process (MIG).</Text>
      )}
      <Text size="sm" fw={600}>GPU memory (GiB)</Text>
      <LineChart
        h={180}
        data={memory}
        dataKey="time"
        series={lines}
        withDots={false}
        connectNulls={false}
        curveType="linear"
        valueFormatter={(v) => formatBytes(v * 2 ** 30)}
        withLegend={lines.length > 1}
      />
    </Stack>
  );
}
