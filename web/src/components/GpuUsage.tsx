// What a workload did to its GPUs (workload page) and what a node's GPUs do (node page): a summary that
// says why use is unknown when it is, and charts loaded only when there is something to draw.
import { Badge, Card, Group, Loader, Table, Text, Title } from "@mantine/core";
import { lazy, Suspense } from "react";

import type { Workload } from "../api/client";
import { useNodeGpuUsage, useWorkloadGpuUsage } from "../api/queries";
import { formatBytes, formatPercent, formatTime } from "../lib/format";
import { ProblemAlert } from "./Problem";

const GpuCharts = lazy(() => import("./charts/GpuCharts"));

const ENDED = ["SUCCEEDED", "FAILED", "CANCELLED"];

function Charts(props: Parameters<typeof GpuCharts>[0]) {
  return (
    <Suspense fallback={<Loader size="sm" aria-label="loading the charts" />}>
      <GpuCharts {...props} />
    </Suspense>
  );
}

export function WorkloadGpuUsage({ workload }: { workload: Workload }) {
  const started = !!workload.started_at;
  const usage = useWorkloadGpuUsage(workload.id, started && !ENDED.includes(workload.status));
  const data = usage.data;
  const summary = data?.summary;
  return (
    <Card withBorder data-testid="gpu-usage">
      <Group justify="space-between" mb="xs">
        <Title order={4}>GPU use</Title>
        {data?.sources.map((s) => <Badge key={s} variant="light" color={s === "scripted" || s === "replay" ? "grape" : "blue"}>{s}</Badge>)}
      </Group>
      <ProblemAlert error={usage.error} />
      {!started ? (
        <Text c="dimmed" size="sm">Not started yet.</Text>
      ) : !data ? (
        <Loader size="sm" />
      ) : summary && summary.samples > 0 ? (
        <>
          <Text size="sm" data-testid="gpu-summary">
            {data.attributable
              ? `Mean ${formatPercent(summary.gpu_util_mean_percent)}, peak ${formatPercent(summary.gpu_util_peak_percent)} per GPU`
              : data.reason}
            {` · memory mean ${formatBytes(summary.memory_mean_bytes)}, peak ${formatBytes(summary.memory_peak_bytes)} per GPU`}
          </Text>
          <Charts
            title={`GPU use of ${workload.name}`}
            series={data.series.map((s) => ({ label: `replica ${s.replica_index} · GPU ${s.gpu_index}`, points: s.points }))}
          />
        </>
      ) : (
        <Text c="dimmed" size="sm" data-testid="gpu-summary">{data.reason}</Text>
      )}
    </Card>
  );
}

export function NodeGpuUsage({ node }: { node: string }) {
  const usage = useNodeGpuUsage(node);
  const data = usage.data;
  return (
    <>
      <ProblemAlert error={usage.error} />
      {data && (
        <>
          <Table striped mt="sm" data-testid={`gpu-state-${node}`}>
            <Table.Thead>
              <Table.Tr><Table.Th>GPU</Table.Th><Table.Th>Use now</Table.Th><Table.Th>Memory</Table.Th><Table.Th>Temperature</Table.Th><Table.Th>Power</Table.Th><Table.Th>Read</Table.Th></Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {data.gpus.map((g) => (
                <Table.Tr key={g.gpu_index}>
                  <Table.Td>{g.gpu_index}</Table.Td>
                  <Table.Td>{g.reason ? <Text size="xs" c="dimmed">{g.reason}</Text> : g.mig_enabled && g.gpu_util_percent == null ? "MIG: not reported" : formatPercent(g.gpu_util_percent)}</Table.Td>
                  <Table.Td>{g.memory_used_bytes == null ? "—" : `${formatBytes(g.memory_used_bytes)}${g.memory_total_bytes ? ` of ${formatBytes(g.memory_total_bytes)}` : ""}`}</Table.Td>
                  <Table.Td>{g.temperature_celsius == null ? "—" : `${Math.round(g.temperature_celsius)} °C`}</Table.Td>
                  <Table.Td>{g.power_watts == null ? "—" : `${Math.round(g.power_watts)} W`}</Table.Td>
                  <Table.Td>{g.at ? <Text size="xs">{formatTime(g.at)} ({g.source})</Text> : "—"}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          {data.series.length > 0 && (
            <Charts title={`GPU use of node ${node}`} series={data.series.map((s) => ({ label: `GPU ${s.gpu_index}`, points: s.points }))} />
          )}
        </>
      )}
    </>
  );
}
