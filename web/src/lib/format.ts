// Numbers with units, times in the viewer's own zone.
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function formatTime(iso: string | null | undefined): string {
  return iso ? dateTime.format(new Date(iso)) : "—";
}

export function formatAgo(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "—";
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 60) return relative.format(seconds, "second");
  if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
  return relative.format(Math.round(seconds / 86400), "day");
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

export function formatMemory(mib: number): string {
  if (mib >= 1024 * 1024) return `${(mib / 1024 / 1024).toFixed(1)} TiB`;
  if (mib >= 1024) return `${(mib / 1024).toFixed(mib % 1024 === 0 ? 0 : 1)} GiB`;
  return `${mib} MiB`;
}

export function formatCpu(milli: number): string {
  return milli % 1000 === 0 ? `${milli / 1000} cores` : `${(milli / 1000).toFixed(2)} cores`;
}

export function formatGpus(milli: number): string {
  const gpus = milli / 1000;
  return `${Number.isInteger(gpus) ? gpus : gpus.toFixed(2)} GPU${gpus === 1 ? "" : "s"}`;
}

/** What a workload asks for, as a person reads it: "2 × 1 GPU (A100), 4 cores, 16 GiB". */
export function formatRequest(spec: Record<string, unknown>, replicas: number): string {
  const r = (spec.resources ?? {}) as Record<string, number | string | null>;
  const parts: string[] = [];
  if (r.mig_profile) parts.push(`MIG ${r.mig_profile}`);
  else if (r.gpu_share_milli) parts.push(`${Number(r.gpu_share_milli) / 1000} GPU share`);
  else if (r.gpus) parts.push(`${r.gpus} GPU${r.gpus === 1 ? "" : "s"}${r.gpu_model ? ` (${r.gpu_model})` : ""}`);
  if (r.cpu_milli) parts.push(formatCpu(Number(r.cpu_milli)));
  if (r.memory_mib) parts.push(formatMemory(Number(r.memory_mib)));
  return `${replicas > 1 ? `${replicas} × ` : ""}${parts.join(", ") || "no resources"}`;
}

/** Bytes as a person reads them ("2.9 GiB"); "—" when unknown. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null) return "—";
  const units: [string, number][] = [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]];
  for (const [unit, size] of units) if (bytes >= size) return `${(bytes / size).toFixed(1)} ${unit}`;
  return `${bytes} B`;
}

/** A utilisation: "45%", or "—" when unknown (never 0 for unknown). */
export function formatPercent(value: number | null | undefined): string {
  return value == null ? "—" : `${Math.round(value)}%`;
}
