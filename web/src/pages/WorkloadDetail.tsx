import {
  Alert, Badge, Button, Card, Code, Group, Modal, ScrollArea, Select, SimpleGrid, Stack, Switch, Table, Text, TextInput, Timeline, Title,
} from "@mantine/core";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useParams } from "@tanstack/react-router";
import { useEffect, useMemo, useRef, useState } from "react";

import { api, unwrap, type Workload } from "../api/client";
import { keys, useMe, useWorkload, useWorkloadEvents } from "../api/queries";
import { WorkloadGpuUsage } from "../components/GpuUsage";
import { ProblemAlert, QueryState } from "../components/Problem";
import { StatusBadge } from "../components/StatusBadge";
import { downloadLogs, useLogs } from "../live/logs";
import { formatCpu, formatMemory, formatRequest, formatTime } from "../lib/format";
import { toYaml } from "../lib/spec";

const ENDED = ["SUCCEEDED", "FAILED", "CANCELLED"];

function Logs({ workload }: { workload: Workload }) {
  const [replica, setReplica] = useState(0);
  const [follow, setFollow] = useState(true);
  const [search, setSearch] = useState("");
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const started = workload.placements.length > 0 || !!workload.started_at;
  // Re-open when the workload starts; a follow stream ends by itself when the replica ends.
  const logs = useLogs(workload.id, replica, started, follow && !ENDED.includes(workload.status));
  const box = useRef<HTMLPreElement>(null);
  const lines = useMemo(() => {
    const all = logs.text.split("\n");
    if (all[all.length - 1] === "") all.pop();
    return search ? all.filter((line) => line.toLowerCase().includes(search.toLowerCase())) : all;
  }, [logs.text, search]);
  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines, follow]);

  return (
    <Card withBorder>
      <Group justify="space-between" mb="xs">
        <Title order={4}>Logs</Title>
        <Group gap="sm">
          {workload.replicas > 1 && (
            <Select aria-label="Replica" w={130} value={String(replica)} onChange={(v) => setReplica(Number(v ?? 0))} data={Array.from({ length: workload.replicas }, (_, i) => ({ value: String(i), label: `replica ${i}` }))} />
          )}
          <TextInput aria-label="Search the logs" placeholder="search" value={search} onChange={(e) => setSearch(e.currentTarget.value)} w={180} />
          <Switch label="Follow" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} />
          <Button variant="default" size="xs" disabled={!started} onClick={() => downloadLogs(workload.id, replica).catch(setDownloadError)}>
            Download
          </Button>
        </Group>
      </Group>
      <ProblemAlert error={downloadError} />
      {!started ? (
        <Text c="dimmed" size="sm">No output yet: the workload has not started.</Text>
      ) : logs.error ? (
        <Alert color="red">{logs.error}</Alert>
      ) : (
        <ScrollArea.Autosize mah={420} viewportRef={box as never}>
          <pre data-testid="logs" aria-live="polite" style={{ margin: 0, fontSize: 12, whiteSpace: "pre-wrap" }} ref={box}>
            {lines.join("\n") || (logs.streaming ? "waiting for output…" : "(no output)")}
          </pre>
        </ScrollArea.Autosize>
      )}
      {search && <Text size="xs" c="dimmed">{lines.length} matching lines</Text>}
    </Card>
  );
}

export function WorkloadDetailPage() {
  const { workloadId } = useParams({ from: "/app/workloads/$workloadId" });
  const workload = useWorkload(workloadId);
  const events = useWorkloadEvents(workloadId);
  const me = useMe();
  const client = useQueryClient();
  const [confirm, setConfirm] = useState(false);
  const [showSpec, setShowSpec] = useState(false);
  const cancel = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/workloads/{workload_id}/cancel", { params: { path: { workload_id: workloadId } } })),
    onSuccess: (w) => {
      client.setQueryData(keys.workload(w.id), w);
      setConfirm(false);
    },
  });

  return (
    <QueryState query={workload}>
      {workload.data && (() => {
        const w = workload.data;
        const myRole = me.data?.workspaces?.[w.workspace];
        const own = w.created_by === me.data?.username;
        const mayCancel = !ENDED.includes(w.status) && (!!me.data?.admin || myRole === "manager" || (own && myRole === "member"));
        return (
          <Stack>
            <Group justify="space-between">
              <Group>
                <Title order={2}>{w.name}</Title>
                <span data-testid="status"><StatusBadge status={w.status} /></span>
                <Code>{w.id}</Code>
              </Group>
              <Group>
                <Button variant="default" onClick={() => setShowSpec(true)}>Spec (YAML)</Button>
                {mayCancel && <Button color="red" variant="light" onClick={() => setConfirm(true)}>Cancel workload</Button>}
              </Group>
            </Group>
            <ProblemAlert error={cancel.error} />
            {w.status === "PENDING" && (
              <Alert color="yellow" title="Why it waits" data-testid="why-waiting">
                <Text>{w.reason ?? "waiting for the scheduler"}</Text>
                {w.queue_position != null && <Text fw={600} data-testid="queue-position">Position in the queue: #{w.queue_position}</Text>}
              </Alert>
            )}
            {ENDED.includes(w.status) && w.reason && <Alert color={w.status === "SUCCEEDED" ? "green" : "gray"}>{w.reason}</Alert>}
            <SimpleGrid cols={{ base: 1, md: 2 }}>
              <Card withBorder>
                <Title order={4} mb="xs">Details</Title>
                <Table variant="vertical" layout="fixed">
                  <Table.Tbody>
                    <Table.Tr><Table.Th w={140}>Workspace</Table.Th><Table.Td>{w.workspace}</Table.Td></Table.Tr>
                    <Table.Tr><Table.Th>Kind</Table.Th><Table.Td>{w.kind}</Table.Td></Table.Tr>
                    <Table.Tr><Table.Th>Owner</Table.Th><Table.Td>{w.created_by ?? "—"}</Table.Td></Table.Tr>
                    <Table.Tr><Table.Th>Request</Table.Th><Table.Td>{formatRequest(w.spec, w.replicas)}</Table.Td></Table.Tr>
                    <Table.Tr><Table.Th>Priority</Table.Th><Table.Td>{w.priority}{w.preemptible ? "" : " (not preemptible)"}</Table.Td></Table.Tr>
                    <Table.Tr><Table.Th>Submitted</Table.Th><Table.Td>{formatTime(w.created_at)}</Table.Td></Table.Tr>
                    <Table.Tr><Table.Th>Started</Table.Th><Table.Td>{formatTime(w.started_at)}</Table.Td></Table.Tr>
                    <Table.Tr><Table.Th>Finished</Table.Th><Table.Td>{formatTime(w.finished_at)}</Table.Td></Table.Tr>
                  </Table.Tbody>
                </Table>
              </Card>
              <Card withBorder>
                <Title order={4} mb="xs">Timeline</Title>
                <QueryState query={events} empty="No events yet.">
                  <Timeline bulletSize={12} lineWidth={2} active={(events.data?.length ?? 1) - 1}>
                    {(events.data ?? []).map((e, i) => (
                      <Timeline.Item key={i} title={e.type}>
                        <Text size="xs" c="dimmed">{formatTime(e.created_at)}</Text>
                        <Text size="sm">{e.reason}</Text>
                      </Timeline.Item>
                    ))}
                  </Timeline>
                </QueryState>
              </Card>
            </SimpleGrid>
            <Card withBorder>
              <Title order={4} mb="xs">Placement</Title>
              {w.placements.length === 0 ? (
                <Text c="dimmed" size="sm">Not placed yet.</Text>
              ) : (
                <Table striped>
                  <Table.Thead>
                    <Table.Tr><Table.Th>Replica</Table.Th><Table.Th>Node</Table.Th><Table.Th>GPUs</Table.Th><Table.Th>GPU UUIDs</Table.Th><Table.Th>MIG / share</Table.Th><Table.Th>CPU</Table.Th><Table.Th>Memory</Table.Th><Table.Th>State</Table.Th></Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {w.placements.map((p) => (
                      <Table.Tr key={p.index}>
                        <Table.Td>{p.index}</Table.Td>
                        <Table.Td>{p.node}</Table.Td>
                        <Table.Td>{p.gpus.join(", ") || "—"}</Table.Td>
                        <Table.Td><Text size="xs" ff="monospace">{p.gpu_uuids.join(", ") || "—"}</Text></Table.Td>
                        <Table.Td>{p.mig_profile ?? (p.gpu_milli && p.gpu_milli < 1000 ? `${p.gpu_milli / 1000} of a GPU` : "—")}</Table.Td>
                        <Table.Td>{formatCpu(p.cpu_milli)}</Table.Td>
                        <Table.Td>{formatMemory(p.memory_mib)}</Table.Td>
                        <Table.Td>{p.state ? <Badge variant="outline">{p.state}{p.exit_code != null ? ` (${p.exit_code})` : ""}</Badge> : "—"}</Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              )}
            </Card>
            <WorkloadGpuUsage workload={w} />
            <Logs workload={w} />
            <Modal opened={confirm} onClose={() => setConfirm(false)} title={`Cancel ${w.name}?`}>
              <Text mb="md">Its replicas are stopped; this cannot be undone.</Text>
              <Group justify="end">
                <Button variant="default" onClick={() => setConfirm(false)}>Keep it</Button>
                <Button color="red" loading={cancel.isPending} onClick={() => cancel.mutate()}>Cancel workload</Button>
              </Group>
            </Modal>
            <Modal opened={showSpec} onClose={() => setShowSpec(false)} title="Stored spec (scheduler units: millicores, MiB)" size="lg">
              <Code block>{toYaml({ workspace: w.workspace, name: w.name, kind: w.kind, ...(w.spec as object) } as never)}</Code>
            </Modal>
          </Stack>
        );
      })()}
    </QueryState>
  );
}
