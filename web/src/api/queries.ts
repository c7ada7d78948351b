// Shared queries: one key per resource, so live events and pages agree on what they update.
import { useInfiniteQuery, useQuery, type InfiniteData } from "@tanstack/react-query";

import { api, unwrap, type Workload, type WorkloadKind, type WorkloadPage, type WorkloadStatus } from "./client";

export const PAGE_SIZE = 200;

export interface WorkloadFilters {
  workspace?: string;
  states?: WorkloadStatus[];
  kind?: WorkloadKind;
  owner?: string;
}

export const keys = {
  me: ["me"] as const,
  workspaces: ["workspaces"] as const,
  workspace: (name: string) => ["workspaces", name] as const,
  quota: (name: string) => ["quota", name] as const,
  nodes: ["nodes"] as const,
  workloads: ["workloads"] as const,
  workloadList: (filters: WorkloadFilters) => ["workloads", "list", filters] as const,
  workload: (id: string) => ["workload", id] as const,
  workloadEvents: (id: string) => ["workload-events", id] as const,
  tokens: ["tokens"] as const,
  users: ["users"] as const,
  audit: ["audit"] as const,
  workloadGpuUsage: (id: string) => ["workload-gpu-usage", id] as const,
  nodeGpuUsage: (name: string) => ["node-gpu-usage", name] as const,
};

/** GPU samples arrive every 10 s on the server: a running workload's charts follow them at that pace. */
export const GPU_USAGE_REFRESH_MS = 10_000;

export function useWorkloadGpuUsage(id: string, live: boolean) {
  return useQuery({
    queryKey: keys.workloadGpuUsage(id),
    queryFn: () =>
      unwrap(api.GET("/api/v1/workloads/{workload_id}/gpu-usage", { params: { path: { workload_id: id } } })),
    refetchInterval: live ? GPU_USAGE_REFRESH_MS : false,
  });
}

export function useNodeGpuUsage(name: string) {
  return useQuery({
    queryKey: keys.nodeGpuUsage(name),
    queryFn: () => unwrap(api.GET("/api/v1/nodes/{node}/gpu-usage", { params: { path: { node: name } } })),
    refetchInterval: GPU_USAGE_REFRESH_MS,
  });
}

export function useMe() {
  return useQuery({ queryKey: keys.me, queryFn: () => unwrap(api.GET("/api/v1/auth/me")), staleTime: 60_000 });
}

export function useWorkspaces() {
  return useQuery({ queryKey: keys.workspaces, queryFn: () => unwrap(api.GET("/api/v1/workspaces")) });
}

export function useQuota(name: string) {
  return useQuery({
    queryKey: keys.quota(name),
    queryFn: () => unwrap(api.GET("/api/v1/workspaces/{name}/quota", { params: { path: { name } } })),
  });
}

export function useNodes() {
  return useQuery({ queryKey: keys.nodes, queryFn: () => unwrap(api.GET("/api/v1/nodes")) });
}

/** Server-paged and server-filtered, newest first; pages are fetched as the table scrolls. */
export function useWorkloadPages(filters: WorkloadFilters) {
  return useInfiniteQuery({
    queryKey: keys.workloadList(filters),
    initialPageParam: undefined as number | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET("/api/v1/workloads", {
          params: {
            query: {
              workspace: filters.workspace || undefined,
              state: filters.states?.length ? filters.states : undefined,
              kind: filters.kind ? [filters.kind] : undefined,
              owner: filters.owner || undefined,
              limit: PAGE_SIZE,
              cursor: pageParam ?? undefined,
            },
          },
        }),
      ),
    getNextPageParam: (last: WorkloadPage) => last.next_cursor ?? undefined,
  });
}

export function matchesFilters(workload: Workload, filters: WorkloadFilters): boolean {
  if (filters.workspace && workload.workspace !== filters.workspace) return false;
  if (filters.states?.length && !filters.states.includes(workload.status)) return false;
  if (filters.kind && workload.kind !== filters.kind) return false;
  if (filters.owner && workload.created_by !== filters.owner) return false;
  return true;
}

/** A workload's new state folded into a loaded list: replaced in place, or added on top if it is new. */
export function foldWorkload(
  data: InfiniteData<WorkloadPage, number | undefined> | undefined,
  workload: Workload,
  filters: WorkloadFilters,
): InfiniteData<WorkloadPage, number | undefined> | undefined {
  if (!data) return data;
  let found = false;
  const pages = data.pages.map((page) => {
    const index = page.items.findIndex((item) => item.id === workload.id);
    if (index < 0) return page;
    found = true;
    const items = page.items.slice();
    items[index] = workload;
    return { ...page, items };
  });
  if (found) return { ...data, pages };
  if (!matchesFilters(workload, filters) || pages.length === 0) return data;
  const [first, ...rest] = pages as [WorkloadPage, ...WorkloadPage[]];
  return { ...data, pages: [{ ...first, items: [workload, ...first.items], total: first.total + 1 }, ...rest] };
}

export function useWorkload(id: string) {
  return useQuery({
    queryKey: keys.workload(id),
    queryFn: () => unwrap(api.GET("/api/v1/workloads/{workload_id}", { params: { path: { workload_id: id } } })),
  });
}

export function useWorkloadEvents(id: string) {
  return useQuery({
    queryKey: keys.workloadEvents(id),
    queryFn: () =>
      unwrap(api.GET("/api/v1/workloads/{workload_id}/events", { params: { path: { workload_id: id } } })),
  });
}

export function useTokens() {
  return useQuery({ queryKey: keys.tokens, queryFn: () => unwrap(api.GET("/api/v1/auth/tokens")) });
}

export function useUsers(enabled: boolean) {
  return useQuery({ queryKey: keys.users, queryFn: () => unwrap(api.GET("/api/v1/users")), enabled });
}

export function useAudit(enabled: boolean) {
  return useQuery({
    queryKey: keys.audit,
    queryFn: () => unwrap(api.GET("/api/v1/audit", { params: { query: { limit: 1000 } } })),
    enabled,
  });
}
