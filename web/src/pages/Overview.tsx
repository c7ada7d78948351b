import { Anchor, Card, Group, Progress, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { Link } from "@tanstack/react-router";

import { api, unwrap, type NodeInfo, type WorkspaceInfo } from "../api/client";
import { useMe, useNodes, useQuota, useWorkloadPages, useWorkspaces } from "../api/queries";
import { QueryState } from "../components/Problem";
import { StatusBadge } from "../components/StatusBadge";
import { WorkloadLink } from "../components/WorkloadLink";
import { UsageBar } from "../components/UsageBar";
import { formatAgo, formatRequest } from "../lib/format";

const LIVE = ["PENDING", "ADMITTED", "STARTING", "RUNNING"] as const;

interface GpuGroup {
  node: string;
  model: string;
  total: number;
  usedMilli: number;
  shared: number;
  mig: number;
  unhealthy: number;
}

export function gpuGroups(nodes: NodeInfo[]): GpuGroup[] {
  const groups = new Map<string, GpuGroup>();
  for (const node of nodes) {
    for (const device of node.devices) {
      const key = `${node.name}/${device.model}`;
      const group = groups.get(key) ?? { node: node.name, model: device.model, total: 0, usedMilli: 0, shared: 0, mig: 0, unhealthy: 0 };
      group.total += 1;
      group.usedMilli += Math.min(device.allocated_milli, 1000);
      if (device.allocated_milli > 0 && device.allocated_milli < 1000) group.shared += 1;
      if (device.mig_enabled) group.mig += 1;
      if (!device.healthy) group.unhealthy += 1;
      groups.set(key, group);
    }
  }
  return [...groups.values()];
}

function WorkspaceQuota({ workspace }: { workspace: WorkspaceInfo }) {
  const quota = useQuota(workspace.name);
  return (
    <Card withBorder>
      <Text fw={600} mb="xs">
        {workspace.name}
      </Text>
      <QueryState query={quota}>
        <Stack gap="xs">
          {quota.data?.entries.length === 0 && (
            <Text size="sm" c="dimmed">
              No quota set: this workspace may use whatever is free.
            </Text>
          )}
          {quota.data?.entries.map((entry) => (
            <UsageBar
              key={entry.resource}
              label={entry.resource}
              used={entry.used}
              guaranteed={entry.guaranteed}
              limit={entry.limit ?? null}
              unit={entry.unit}
            />
          ))}
        </Stack>
      </QueryState>
    </Card>
  );
}

export function OverviewPage() {
  const me = useMe();
  const nodes = useNodes();
  const workspaces = useWorkspaces();
  const mine = useWorkloadPages({ states: [...LIVE] });
  const queue = useQuery({
    queryKey: ["workloads", "count", "PENDING"],
    queryFn: () => unwrap(api.GET("/api/v1/workloads", { params: { query: { state: ["PENDING"], limit: 1 } } })),
  });
  const groups = gpuGroups(nodes.data ?? []);
  const totalGpus = groups.reduce((sum, g) => sum + g.total, 0);
  const usedGpus = groups.reduce((sum, g) => sum + g.usedMilli, 0) / 1000;
  const myLive = (mine.data?.pages.flatMap((p) => p.items) ?? []).filter((w) => w.created_by === me.data?.username);
  const myWorkspaces = (workspaces.data ?? []).filter((w) => w.my_role || me.data?.admin);

  return (
    <Stack>
      <Title order={2}>Overview</Title>
      <SimpleGrid cols={{ base: 1, sm: 3 }}>
        <Card withBorder>
          <Text size="sm" c="dimmed">GPUs in use</Text>
          <Text fz={28} fw={700} data-testid="gpus-in-use">
            {usedGpus.toFixed(usedGpus % 1 ? 2 : 0)} / {totalGpus}
          </Text>
          <Progress value={totalGpus ? (usedGpus / totalGpus) * 100 : 0} aria-label="GPUs in use" />
        </Card>
        <Card withBorder>
          <Text size="sm" c="dimmed">Queue length</Text>
          <Text fz={28} fw={700} data-testid="queue-length">{queue.data?.total ?? "…"}</Text>
          <Text size="xs" c="dimmed">workloads waiting for GPUs or quota</Text>
        </Card>
        <Card withBorder>
          <Text size="sm" c="dimmed">My live workloads</Text>
          <Text fz={28} fw={700}>{myLive.length}</Text>
          <Text size="xs" c="dimmed">
            {myLive.filter((w) => w.status === "RUNNING").length} running · {myLive.filter((w) => w.status === "PENDING").length} pending
          </Text>
        </Card>
      </SimpleGrid>

      <Title order={3}>GPUs by node and model</Title>
      <QueryState query={nodes} empty="No nodes have reported yet.">
        <Table striped withTableBorder>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Node</Table.Th>
              <Table.Th>Model</Table.Th>
              <Table.Th>In use</Table.Th>
              <Table.Th>Free</Table.Th>
              <Table.Th>Shared</Table.Th>
              <Table.Th>MIG mode</Table.Th>
              <Table.Th>Unhealthy</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {groups.map((g) => (
              <Table.Tr key={`${g.node}/${g.model}`}>
                <Table.Td>{g.node}</Table.Td>
                <Table.Td>{g.model}</Table.Td>
                <Table.Td>{(g.usedMilli / 1000).toFixed(g.usedMilli % 1000 ? 2 : 0)} GPUs</Table.Td>
                <Table.Td>{((g.total * 1000 - g.usedMilli) / 1000).toFixed((g.total * 1000 - g.usedMilli) % 1000 ? 2 : 0)} GPUs</Table.Td>
                <Table.Td>{g.shared}</Table.Td>
                <Table.Td>{g.mig}</Table.Td>
                <Table.Td>{g.unhealthy}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </QueryState>

      <Title order={3}>My running and pending workloads</Title>
      <QueryState query={mine}>
        {myLive.length === 0 ? (
          <Text c="dimmed">
            Nothing of yours is running or waiting. <Anchor component={Link} to="/submit">Submit a workload</Anchor>.
          </Text>
        ) : (
          <Table withTableBorder>
            <Table.Tbody>
              {myLive.slice(0, 20).map((w) => (
                <Table.Tr key={w.id}>
                  <Table.Td>
                    <WorkloadLink id={w.id}>{w.name}</WorkloadLink>
                  </Table.Td>
                  <Table.Td><StatusBadge status={w.status} /></Table.Td>
                  <Table.Td>{w.workspace}</Table.Td>
                  <Table.Td>{formatRequest(w.spec, w.replicas)}</Table.Td>
                  <Table.Td>{w.status === "PENDING" ? (w.queue_position ? `#${w.queue_position} in queue` : w.reason) : formatAgo(w.started_at ?? w.created_at)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </QueryState>

      <Title order={3}>Quota use of my workspaces</Title>
      <QueryState query={workspaces} empty="You are not a member of any workspace yet.">
        <SimpleGrid cols={{ base: 1, md: 2 }}>
          {myWorkspaces.map((w) => (
            <WorkspaceQuota key={w.name} workspace={w} />
          ))}
        </SimpleGrid>
      </QueryState>
      <Group />
    </Stack>
  );
}
