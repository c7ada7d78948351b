import { Badge } from "@mantine/core";

import type { WorkloadStatus } from "../api/client";

const COLORS: Record<WorkloadStatus, string> = {
  PENDING: "yellow",
  ADMITTED: "cyan",
  STARTING: "cyan",
  RUNNING: "blue",
  SUCCEEDED: "green",
  FAILED: "red",
  CANCELLED: "gray",
  PREEMPTED: "orange",
};

export function StatusBadge({ status }: { status: WorkloadStatus }) {
  return (
    <Badge color={COLORS[status]} variant="light" data-status={status}>
      {status}
    </Badge>
  );
}
