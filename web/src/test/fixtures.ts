import type { Workload, WorkloadPage } from "../api/client";

let counter = 0;

export function workload(overrides: Partial<Workload> = {}): Workload {
  counter += 1;
  return {
    id: `w${counter}`,
    name: `job-${counter}`,
    workspace: "team-a",
    kind: "job",
    status: "PENDING",
    reason: "waiting for the scheduler",
    pending_code: "new",
    queue_position: null,
    priority: 0,
    preemptible: true,
    replicas: 1,
    spec: { resources: { gpus: 1, cpu_milli: 2000, memory_mib: 16384 } },
    created_by: "alice",
    created_at: "2026-12-01T10:00:00Z",
    admitted_at: null,
    started_at: null,
    finished_at: null,
    placements: [],
    ...overrides,
  };
}

export function page(items: Workload[], total = items.length): WorkloadPage {
  return { items, total, next_cursor: null };
}
