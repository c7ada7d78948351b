import { Box, Button, Group, MultiSelect, Select, Stack, Text, TextInput, Title } from "@mantine/core";
import { useVirtualizer } from "@tanstack/react-virtual";
import { Link, useNavigate, useSearch } from "@tanstack/react-router";
import { useEffect, useMemo, useRef } from "react";

import type { Workload, WorkloadKind, WorkloadStatus } from "../api/client";
import { useWorkloadPages, useWorkspaces, type WorkloadFilters } from "../api/queries";
import { ProblemAlert } from "../components/Problem";
import { StatusBadge } from "../components/StatusBadge";
import { WorkloadLink } from "../components/WorkloadLink";
import { formatAgo, formatRequest, formatTime } from "../lib/format";

export interface WorkloadsSearch {
  workspace?: string;
  state?: string; // comma-separated states
  kind?: string;
  owner?: string;
}

const STATES: WorkloadStatus[] = ["PENDING", "ADMITTED", "STARTING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "PREEMPTED"];
const KINDS: WorkloadKind[] = ["job", "distributed", "interactive", "service"];
const ROW_HEIGHT = 40;
const COLUMNS = "minmax(160px,2fr) 110px 120px 90px minmax(160px,2fr) 100px minmax(180px,3fr) 150px";

function waitOrPlace(w: Workload): string {
  if (w.status === "PENDING") return `${w.queue_position ? `#${w.queue_position} · ` : ""}${w.reason ?? "waiting"}`;
  if (w.placements.length) return w.placements.map((p) => `${p.node}${p.gpus.length ? ` GPU ${p.gpus.join(",")}` : ""}`).join("; ");
  return w.reason ?? "";
}

export function WorkloadRow({ workload: w, top }: { workload: Workload; top: number }) {
  return (
    <Box
      role="row"
      data-workload-id={w.id}
      data-status={w.status}
      style={{ position: "absolute", top, left: 0, right: 0, height: ROW_HEIGHT, display: "grid", gridTemplateColumns: COLUMNS, alignItems: "center", gap: 8, padding: "0 8px", borderBottom: "1px solid var(--mantine-color-gray-2)" }}
    >
      <Text role="cell" size="sm" truncate>
        <WorkloadLink id={w.id}>{w.name}</WorkloadLink>
      </Text>
      <span role="cell"><StatusBadge status={w.status} /></span>
      <Text role="cell" size="sm" truncate>{w.workspace}</Text>
      <Text role="cell" size="sm">{w.kind}</Text>
      <Text role="cell" size="sm" truncate>{formatRequest(w.spec, w.replicas)}</Text>
      <Text role="cell" size="sm" truncate>{w.created_by ?? "—"}</Text>
      <Text role="cell" size="sm" truncate title={waitOrPlace(w)}>{waitOrPlace(w)}</Text>
      <Text role="cell" size="sm" title={formatTime(w.created_at)}>{formatAgo(w.created_at)}</Text>
    </Box>
  );
}

export function WorkloadsPage() {
  const search = useSearch({ from: "/app/workloads" });
  const navigate = useNavigate({ from: "/workloads" });
  const filters: WorkloadFilters = useMemo(
    () => ({
      workspace: search.workspace,
      states: search.state ? (search.state.split(",") as WorkloadStatus[]) : undefined,
      kind: search.kind as WorkloadKind | undefined,
      owner: search.owner,
    }),
    [search.workspace, search.state, search.kind, search.owner],
  );
  const pages = useWorkloadPages(filters);
  const workspaces = useWorkspaces();
  const rows = useMemo(() => pages.data?.pages.flatMap((p) => p.items) ?? [], [pages.data]);
  const total = pages.data?.pages[0]?.total ?? 0;

  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({ count: rows.length, getScrollElement: () => scroller.current, estimateSize: () => ROW_HEIGHT, overscan: 12 });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items[items.length - 1]?.index ?? 0;
  useEffect(() => {
    if (lastIndex >= rows.length - 30 && pages.hasNextPage && !pages.isFetchingNextPage) void pages.fetchNextPage();
  }, [lastIndex, rows.length, pages.hasNextPage, pages.isFetchingNextPage]); // eslint-disable-line react-hooks/exhaustive-deps

  const set = (patch: Partial<WorkloadsSearch>) => void navigate({ search: (prev: WorkloadsSearch) => ({ ...prev, ...patch }) });

  return (
    <Stack gap="sm">
      <Group justify="space-between">
        <Title order={2}>Workloads</Title>
        <Button component={Link} to="/submit">Submit a workload</Button>
      </Group>
      <Group align="end" gap="sm" role="search" aria-label="Filter workloads">
        <Select
          label="Workspace"
          placeholder="All mine"
          clearable
          data={(workspaces.data ?? []).map((w) => w.name)}
          value={filters.workspace ?? null}
          onChange={(value) => set({ workspace: value ?? undefined })}
        />
        <MultiSelect
          label="State"
          placeholder="Any"
          clearable
          data={STATES}
          value={filters.states ?? []}
          onChange={(value) => set({ state: value.length ? value.join(",") : undefined })}
          w={260}
        />
        <Select label="Kind" placeholder="Any" clearable data={KINDS} value={filters.kind ?? null} onChange={(value) => set({ kind: value ?? undefined })} w={140} />
        <TextInput label="Owner" placeholder="username" defaultValue={filters.owner ?? ""} onBlur={(e) => set({ owner: e.currentTarget.value || undefined })} onKeyDown={(e) => e.key === "Enter" && set({ owner: e.currentTarget.value || undefined })} w={160} />
      </Group>
      <ProblemAlert error={pages.error} />
      <Text size="sm" c="dimmed" aria-live="polite" data-testid="workload-count">
        {pages.isPending ? "Loading…" : `${total} workload${total === 1 ? "" : "s"}`}
      </Text>
      <Box role="table" aria-label="Workloads" aria-rowcount={rows.length} style={{ border: "1px solid var(--mantine-color-gray-3)", borderRadius: 4 }}>
        <Box role="row" style={{ display: "grid", gridTemplateColumns: COLUMNS, gap: 8, padding: "6px 8px", fontWeight: 600, fontSize: 14, background: "var(--mantine-color-gray-0)" }}>
          {["Name", "State", "Workspace", "Kind", "Request", "Owner", "Why waiting / placement", "Submitted"].map((h) => (
            <span role="columnheader" key={h}>{h}</span>
          ))}
        </Box>
        <div ref={scroller} style={{ height: "calc(100vh - 290px)", minHeight: 240, overflow: "auto" }} data-testid="workload-rows">
          {!pages.isPending && rows.length === 0 && (
            <Text c="dimmed" p="md">No workloads match. Submit one, or clear the filters.</Text>
          )}
          <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
            {items.map((item) => {
              const workload = rows[item.index];
              return workload ? <WorkloadRow key={workload.id} workload={workload} top={item.start} /> : null;
            })}
          </div>
        </div>
      </Box>
    </Stack>
  );
}
