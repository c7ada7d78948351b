// The usage ledger's report (GET /api/v1/usage): GPU-hours allocated and used, CPU-core-hours, memory.
import { useQuery } from "@tanstack/react-query";

import { api, unwrap, type Schemas } from "./client";

export type UsageReport = Schemas["UsageReport"];
export type UsageRow = Schemas["UsageRow"];
export type UsageGroupBy = UsageReport["by"];

export interface UsageParams {
  workspace?: string;
  from?: string; // a day (YYYY-MM-DD): from its midnight
  to?: string; // a day: to its end, included
  by: UsageGroupBy;
}

function query(p: UsageParams) {
  return {
    by: p.by,
    ...(p.workspace ? { workspace: p.workspace } : {}),
    ...(p.from ? { from: p.from } : {}),
    ...(p.to ? { to: p.to } : {}),
  };
}

export function useUsage(p: UsageParams) {
  return useQuery({
    queryKey: ["usage", p] as const,
    // the route also answers text/csv (format=csv); as JSON it is always the report
    queryFn: () => unwrap(api.GET("/api/v1/usage", { params: { query: query(p) } })) as Promise<UsageReport>,
  });
}

/** The same report as CSV, fetched with the session's credentials (a plain link would carry none). */
export async function usageCsv(p: UsageParams): Promise<string> {
  const text = await unwrap(
    api.GET("/api/v1/usage", { params: { query: { ...query(p), format: "csv" } }, parseAs: "text" }),
  );
  return String(text);
}

/** "12.50", or "unknown" where no utilisation was measured (never 0 for unknown). */
export function usedText(row: UsageRow): string {
  if (row.gpu_hours_used == null) return row.gpu_hours > 0 ? "unknown" : "—";
  const share = row.gpu_hours_measured > 0 ? row.gpu_hours_used / row.gpu_hours_measured : 0;
  const partly = row.gpu_hours_measured < row.gpu_hours ? " of measured" : "";
  return `${hours(row.gpu_hours_used)} (${Math.round(share * 100)}%${partly})`;
}

export function hours(value: number): string {
  return value.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
