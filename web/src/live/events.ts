// The console's one live connection: GET /api/v1/events/stream (server-sent events, read with fetch so
// the Authorization header travels). Each event carries a subject's current state, which is folded into
// the query cache, so every page showing it changes at once, without polling. After a drop it resumes
// from the last event id (fetch-event-source sends Last-Event-ID), so nothing is missed.
import { fetchEventSource, type EventSourceMessage } from "@microsoft/fetch-event-source";
import type { InfiniteData, QueryClient } from "@tanstack/react-query";
import { useSyncExternalStore } from "react";

import { authHeaders, expireSession } from "../auth/session";
import type { NodeInfo, Workload, WorkloadPage } from "../api/client";
import { alertKeys } from "../api/alerts";
import { foldWorkload, keys, type WorkloadFilters } from "../api/queries";

export type LiveState = "connecting" | "live" | "reconnecting";

let state: LiveState = "connecting";
const listeners = new Set<() => void>();

function setState(next: LiveState): void {
  if (state === next) return;
  state = next;
  for (const listener of listeners) listener();
}

export function useLiveState(): LiveState {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => state,
  );
}

class Fatal extends Error {}

const RETRY_MS = 1000;

/** Apply one event to the cache; exported for tests. */
export function applyEvent(client: QueryClient, message: Pick<EventSourceMessage, "event" | "data">): void {
  switch (message.event) {
    case "workload": {
      const workload = JSON.parse(message.data) as Workload;
      client.setQueryData(keys.workload(workload.id), workload);
      for (const [key] of client.getQueriesData({ queryKey: [...keys.workloads, "list"] })) {
        const filters = (key[2] ?? {}) as WorkloadFilters;
        client.setQueryData<InfiniteData<WorkloadPage, number | undefined>>(key, (data) =>
          foldWorkload(data, workload, filters),
        );
      }
      void client.invalidateQueries({ queryKey: keys.workloadEvents(workload.id) });
      scheduleRefresh(client);
      markSeen(workload);
      break;
    }
    case "node": {
      const node = JSON.parse(message.data) as NodeInfo;
      client.setQueryData<NodeInfo[]>(keys.nodes, (nodes) =>
        nodes ? (nodes.some((n) => n.name === node.name) ? nodes.map((n) => (n.name === node.name ? node : n)) : [...nodes, node]) : nodes,
      );
      break;
    }
    case "reset":
      void client.invalidateQueries();
      break;
    case "unauthenticated":
      expireSession((JSON.parse(message.data) as { detail?: string }).detail ?? "Your session has ended.");
      break;
  }
}

// Allocations and quota use follow from workload changes: refresh them once a burst has passed.
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
function scheduleRefresh(client: QueryClient): void {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    void client.invalidateQueries({ queryKey: keys.nodes });
    void client.invalidateQueries({ queryKey: ["quota"] });
    void client.invalidateQueries({ queryKey: [...keys.workloads, "count"] });
    void client.invalidateQueries({ queryKey: alertKeys.all }); // alerts about workloads come with them
  }, 400);
}

// For the benchmark: when each workload state reached this page (window.__astragoSeen[id:status]).
function markSeen(workload: Workload): void {
  const seen = ((window as unknown as { __astragoSeen?: Record<string, number> }).__astragoSeen ??= {});
  seen[`${workload.id}:${workload.status}`] = performance.timeOrigin + performance.now();
}

/** Follow the stream until the returned function is called (on sign-out or unmount). */
export function followLiveEvents(client: QueryClient): () => void {
  const controller = new AbortController();
  setState("connecting");
  void fetchEventSource("/api/v1/events/stream", {
    headers: authHeaders(),
    signal: controller.signal,
    openWhenHidden: true,
    async onopen(response) {
      if (response.ok && response.headers.get("content-type")?.startsWith("text/event-stream")) {
        if (state === "reconnecting") void client.invalidateQueries({ queryKey: keys.nodes });
        setState("live");
        return;
      }
      if (response.status === 401) {
        expireSession("Your session has ended. Sign in again.");
        throw new Fatal();
      }
      throw new Error(`the event stream answered ${response.status}`);
    },
    onmessage(message) {
      applyEvent(client, message);
    },
    onclose() {
      setState("reconnecting"); // the server went away (e.g. a restart): retry
      throw new Error("the event stream closed");
    },
    onerror(error) {
      if (error instanceof Fatal) throw error;
      setState("reconnecting");
      return RETRY_MS;
    },
  }).catch(() => undefined);
  return () => controller.abort();
}
