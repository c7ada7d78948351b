import { Alert, Button, Group, Text } from "@mantine/core";

import { useKeepRunning, useReclaim, type Reclaim } from "../api/alerts";
import { formatTime } from "../lib/format";
import { ProblemAlert } from "./Problem";

/** "This workload will be stopped for idleness at T" with one click to keep it running. */
export function ReclaimBannerView({
  reclaim,
  mayKeep,
  onKeep,
  keeping,
}: {
  reclaim: Reclaim;
  mayKeep: boolean;
  onKeep: () => void;
  keeping: boolean;
}) {
  return (
    <Alert color="orange" title="Idle: this workload will be stopped" data-testid="reclaim-banner" role="status">
      <Text size="sm">
        Its GPUs are idle and its endpoints see no traffic, so it will be stopped at <b>{formatTime(reclaim.stop_at)}</b> to
        free the GPUs (its volumes are kept). Using it calls this off.
      </Text>
      {reclaim.kept_by && (
        <Text size="sm" mt={4}>
          Kept running by {reclaim.kept_by} at {formatTime(reclaim.kept_at)}.
        </Text>
      )}
      <Group mt="xs">
        {mayKeep && reclaim.can_postpone && (
          <Button size="xs" color="orange" onClick={onKeep} loading={keeping}>
            Keep running
          </Button>
        )}
        {!reclaim.can_postpone && (
          <Text size="sm" c="dimmed">
            It was kept as long as the policy allows ({formatTime(reclaim.latest_stop_at)}).
          </Text>
        )}
      </Group>
    </Alert>
  );
}

export function ReclaimBanner({ workloadId, running, mayKeep }: { workloadId: string; running: boolean; mayKeep: boolean }) {
  const reclaim = useReclaim(workloadId, running);
  const keep = useKeepRunning(workloadId);
  if (!running || !reclaim.data) return null;
  return (
    <>
      <ReclaimBannerView reclaim={reclaim.data} mayKeep={mayKeep} onKeep={() => keep.mutate()} keeping={keep.isPending} />
      <ProblemAlert error={keep.error} />
    </>
  );
}
