// Follow a replica's output: one streaming fetch (the server keeps it open while the replica runs).
import { useEffect, useState } from "react";

import { authHeaders } from "../auth/session";
import { problemOf } from "../api/client";

const MAX_CHARS = 2_000_000; // keep the page light on chatty jobs: older output is dropped (download has all)

export interface LogState {
  text: string;
  error: string | null;
  streaming: boolean;
}

export function logUrl(workloadId: string, replica: number, follow: boolean): string {
  return `/api/v1/workloads/${encodeURIComponent(workloadId)}/logs?replica=${replica}&follow=${follow}`;
}

export function useLogs(workloadId: string, replica: number, enabled: boolean, follow: boolean): LogState {
  const [state, setState] = useState<LogState>({ text: "", error: null, streaming: false });
  useEffect(() => {
    if (!enabled) return;
    const controller = new AbortController();
    setState({ text: "", error: null, streaming: true });
    (async () => {
      const response = await fetch(logUrl(workloadId, replica, follow), { headers: authHeaders(), signal: controller.signal });
      if (!response.ok || !response.body) {
        const problem = await problemOf(response);
        setState({ text: "", error: problem.detail || problem.title, streaming: false });
        return;
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        setState((s) => {
          const text = s.text + value;
          return { ...s, text: text.length > MAX_CHARS ? text.slice(text.length - MAX_CHARS) : text };
        });
      }
      setState((s) => ({ ...s, streaming: false }));
    })().catch((error: unknown) => {
      if (!controller.signal.aborted) setState((s) => ({ ...s, error: String(error), streaming: false }));
    });
    return () => controller.abort();
  }, [workloadId, replica, enabled, follow]);
  return state;
}

export async function downloadLogs(workloadId: string, replica: number): Promise<void> {
  const response = await fetch(logUrl(workloadId, replica, false), { headers: authHeaders() });
  if (!response.ok) throw await problemOf(response);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = `${workloadId}-replica${replica}.log`;
  link.click();
  URL.revokeObjectURL(url);
}
