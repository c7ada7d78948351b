// Alerts and idle reclaim: queries under one key prefix, so the live feed refreshes them together
// (an alert about a workload also announces that workload on the event stream).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, unwrap, type Schemas } from "./client";

export type AlertInfo = Schemas["AlertOut"];
export type AlertPage = Schemas["AlertPageOut"];
export type Delivery = Schemas["DeliveryOut"];
export type Reclaim = Schemas["ReclaimOut"];
export type AlertStateName = AlertInfo["state"];

export const alertKeys = {
  all: ["alerts"] as const,
  list: (state: AlertStateName | "all") => ["alerts", "list", state] as const,
  count: ["alerts", "count"] as const,
  deliveries: ["alerts", "deliveries"] as const,
  reclaim: (workloadId: string) => ["alerts", "reclaim", workloadId] as const,
};

const REFRESH_MS = 30_000; // besides the live feed: alerts of nodes and quotas announce no workload

export function useAlerts(state: AlertStateName | "all") {
  return useQuery({
    queryKey: alertKeys.list(state),
    queryFn: () =>
      unwrap(api.GET("/api/v1/alerts", { params: { query: { state: state === "all" ? undefined : state, limit: 200 } } })),
    refetchInterval: REFRESH_MS,
  });
}

/** The bell's number: open alerts of the caller's workspaces and workloads (admins: all). */
export function useOpenAlertCount() {
  return useQuery({
    queryKey: alertKeys.count,
    queryFn: () => unwrap(api.GET("/api/v1/alerts", { params: { query: { state: "firing", limit: 1 } } })),
    select: (page: AlertPage) => page.open_count,
    refetchInterval: REFRESH_MS,
  });
}

export function useDeliveries(enabled: boolean) {
  return useQuery({
    queryKey: alertKeys.deliveries,
    queryFn: () => unwrap(api.GET("/api/v1/alert-deliveries", { params: { query: { limit: 200 } } })),
    enabled,
    refetchInterval: REFRESH_MS,
  });
}

export function useResolveAlert() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (id: number) => unwrap(api.POST("/api/v1/alerts/{alert_id}/resolve", { params: { path: { alert_id: id } } })),
    onSuccess: () => void client.invalidateQueries({ queryKey: alertKeys.all }),
  });
}

export function useReclaim(workloadId: string, running: boolean) {
  return useQuery({
    queryKey: alertKeys.reclaim(workloadId),
    queryFn: () => unwrap(api.GET("/api/v1/workloads/{workload_id}/reclaim", { params: { path: { workload_id: workloadId } } })),
    enabled: running,
  });
}

export function useKeepRunning(workloadId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/workloads/{workload_id}/keep", { params: { path: { workload_id: workloadId } } })),
    onSuccess: (reclaim) => client.setQueryData(alertKeys.reclaim(workloadId), reclaim),
  });
}
