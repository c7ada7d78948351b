// The usage report: GPU-hours allocated and used, CPU-core-hours and memory per workspace, user, GPU model
// or day, over a window, with a bar chart (its library loaded only here) and a CSV download.
import { Button, Group, Loader, SegmentedControl, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { lazy, Suspense, useState } from "react";

import { useWorkspaces } from "../api/queries";
import { hours, usageCsv, usedText, useUsage, type UsageGroupBy, type UsageParams } from "../api/usage";
import { ProblemAlert, QueryState } from "../components/Problem";
import { formatTime } from "../lib/format";

const UsageChart = lazy(() => import("../components/charts/UsageChart"));

const GROUPS: { value: UsageGroupBy; label: string }[] = [
  { value: "workspace", label: "Workspace" },
  { value: "user", label: "User" },
  { value: "model", label: "GPU model" },
  { value: "day", label: "Day" },
];

function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.click();
  URL.revokeObjectURL(url);
}

export function UsagePage() {
  const workspaces = useWorkspaces();
  const [params, setParams] = useState<UsageParams>({ by: "workspace" });
  const [csvError, setCsvError] = useState<unknown>(null);
  const report = useUsage(params);
  const data = report.data;
  const label = GROUPS.find((g) => g.value === params.by)?.label ?? params.by;
  const saveCsv = () => {
    setCsvError(null);
    usageCsv(params).then((text) => download(`usage-by-${params.by}.csv`, text), setCsvError);
  };
  return (
    <Stack>
      <Title order={2}>Usage</Title>
      <Group align="end" role="search" aria-label="Choose the report">
        <Select
          label="Workspace"
          placeholder="all you may see"
          clearable
          data={(workspaces.data ?? []).map((w) => w.name)}
          value={params.workspace ?? null}
          onChange={(v) => setParams({ ...params, workspace: v ?? undefined })}
          w={200}
        />
        <TextInput label="From" type="date" value={params.from ?? ""} onChange={(e) => setParams({ ...params, from: e.currentTarget.value || undefined })} />
        <TextInput label="To (included)" type="date" value={params.to ?? ""} onChange={(e) => setParams({ ...params, to: e.currentTarget.value || undefined })} />
        <SegmentedControl aria-label="Rows per" data={GROUPS} value={params.by} onChange={(v) => setParams({ ...params, by: v as UsageGroupBy })} />
        <Button variant="default" onClick={saveCsv} disabled={!data}>Download CSV</Button>
      </Group>
      <ProblemAlert error={csvError} />
      {data && (
        <Text size="sm" c="dimmed" data-testid="usage-window">
          {formatTime(data.from)} to {formatTime(data.to)} · days in {data.time_zone} · running work counts up to now
        </Text>
      )}
      <QueryState query={report} empty="No usage recorded in this window.">
        {data && (
          <>
            {data.rows.length > 0 && (
              <Suspense fallback={<Loader size="sm" aria-label="loading the chart" />}>
                <UsageChart rows={data.rows} title={`GPU-hours per ${label.toLowerCase()}`} />
              </Suspense>
            )}
            <Table striped data-testid="usage-table">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>{label}</Table.Th><Table.Th>GPU-hours</Table.Th><Table.Th>GPU-hours used</Table.Th>
                  <Table.Th>CPU-core-hours</Table.Th><Table.Th>Memory GiB-hours</Table.Th><Table.Th>Runs</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {[...data.rows, data.total].map((r, i) => (
                  <Table.Tr key={`${i}-${r.key}`} fw={r === data.total ? 700 : undefined}>
                    <Table.Td>{r.key}</Table.Td>
                    <Table.Td>{hours(r.gpu_hours)}</Table.Td>
                    <Table.Td>{usedText(r)}</Table.Td>
                    <Table.Td>{hours(r.cpu_core_hours)}</Table.Td>
                    <Table.Td>{hours(r.memory_gib_hours)}</Table.Td>
                    <Table.Td>{r.allocations}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
            <Text size="xs" c="dimmed">
              Used GPU-hours weigh allocated GPU-hours by measured GPU utilisation; "unknown" where none was measured
              (simulated GPUs without a telemetry source, MIG slices), never 0.
            </Text>
          </>
        )}
      </QueryState>
    </Stack>
  );
}
