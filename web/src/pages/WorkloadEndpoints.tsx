// The workload page's Open buttons: one per port behind the gateway. A ready port opens in a new tab
// through a one-time ticket (POST .../endpoints/{port}/open); a port not ready says why.
import { Button, Group, Stack, Tooltip } from "@mantine/core";
import { useState } from "react";

import { api, unwrap, type Schemas, type Workload } from "../api/client";
import { useWorkloadEndpoints } from "../api/queries";
import { ProblemAlert } from "../components/Problem";

type Endpoint = Schemas["EndpointOut"];

/** Why a port cannot be opened now, or null when it can. */
export function notReadyReason(workload: Pick<Workload, "status">, endpoint: Endpoint): string | null {
  if (endpoint.ready) return null;
  if (workload.status === "PENDING") return "The workload is waiting to be scheduled.";
  if (workload.status === "ADMITTED" || workload.status === "STARTING") {
    return `The workload is starting: port ${endpoint.port} opens once it answers its readiness check.`;
  }
  if (workload.status !== "RUNNING") return `The workload is ${workload.status.toLowerCase()}: nothing answers on port ${endpoint.port}.`;
  if (endpoint.replicas === 0) return `No replica listens on port ${endpoint.port} yet.`;
  return `No replica is ready on port ${endpoint.port} yet (0 of ${endpoint.replicas} ready).`;
}

export async function openEndpoint(workloadId: string, port: number): Promise<void> {
  // The tab is opened now, inside the click, so no popup blocker stops it; it gets its address once the
  // server has issued the ticket. It must not reach back into the console: no opener.
  const tab = window.open("about:blank", "_blank");
  if (tab) tab.opener = null;
  try {
    const link = await unwrap(
      api.POST("/api/v1/workloads/{workload_id}/endpoints/{port}/open", { params: { path: { workload_id: workloadId, port } } }),
    );
    const url = new URL(link.url, window.location.origin).toString();
    if (tab) tab.location.href = url;
    else window.location.assign(url);
  } catch (error) {
    tab?.close();
    throw error;
  }
}

export function WorkloadEndpoints({ workload }: { workload: Workload }) {
  const hasPorts = ((workload.spec as { ports?: number[] }).ports ?? []).length > 0;
  const live = ["PENDING", "ADMITTED", "STARTING", "RUNNING"].includes(workload.status);
  const endpoints = useWorkloadEndpoints(workload.id, hasPorts && live);
  const [error, setError] = useState<unknown>(null);
  if (!hasPorts || !live || !endpoints.data) return null;
  return (
    <Stack gap="xs">
      <Group gap="xs" data-testid="endpoints">
        {endpoints.data.map((endpoint) => {
          const reason = notReadyReason(workload, endpoint);
          const button = (
            <Button
              key={endpoint.port}
              variant="filled"
              disabled={reason !== null}
              aria-label={`Open port ${endpoint.port}`}
              onClick={() => {
                setError(null);
                openEndpoint(workload.id, endpoint.port).catch(setError);
              }}
            >
              Open :{endpoint.port}
            </Button>
          );
          return reason ? (
            <Tooltip key={endpoint.port} label={reason} withArrow>
              {/* a disabled button gets no pointer events: the wrapper carries the tooltip */}
              <span data-testid={`endpoint-${endpoint.port}-not-ready`} aria-label={reason}>{button}</span>
            </Tooltip>
          ) : (
            button
          );
        })}
      </Group>
      <ProblemAlert error={error} />
    </Stack>
  );
}
