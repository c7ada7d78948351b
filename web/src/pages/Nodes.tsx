import { Badge, Card, Group, Progress, Stack, Table, Text, Title } from "@mantine/core";

import { useNodes } from "../api/queries";
import { NodeGpuUsage } from "../components/GpuUsage";
import { QueryState } from "../components/Problem";
import { WorkloadLink } from "../components/WorkloadLink";
import { formatAgo, formatCpu, formatMemory, formatTime } from "../lib/format";

export function NodesPage() {
  const nodes = useNodes();
  return (
    <Stack>
      <Title order={2}>Nodes &amp; GPUs</Title>
      <QueryState query={nodes} empty="No nodes have reported yet.">
        <Stack>
          {(nodes.data ?? []).map((node) => (
            <Card withBorder key={node.name} data-node={node.name}>
              <Group justify="space-between" mb="xs">
                <Group gap="xs">
                  <Title order={4}>{node.name}</Title>
                  <Badge variant="light">{node.backend}</Badge>
                  {node.simulated && <Badge color="grape" variant="light">simulated</Badge>}
                  {!node.schedulable && <Badge color="red">not schedulable</Badge>}
                </Group>
                <Text size="xs" c="dimmed" title={formatTime(node.last_seen_at)}>seen {formatAgo(node.last_seen_at)}</Text>
              </Group>
              <Text size="sm">
                CPU {formatCpu(node.allocated_cpu_milli)} of {formatCpu(node.cpu_milli)} · memory {formatMemory(node.allocated_memory_mib)} of {formatMemory(node.memory_mib)}
              </Text>
              <Progress mt={4} mb="sm" value={(node.allocated_cpu_milli / Math.max(node.cpu_milli, 1)) * 100} aria-label={`${node.name} CPU allocated`} />
              {node.devices.length === 0 ? (
                <Text c="dimmed" size="sm">No GPUs.</Text>
              ) : (
                <Table striped>
                  <Table.Thead>
                    <Table.Tr><Table.Th>GPU</Table.Th><Table.Th>Model</Table.Th><Table.Th>Memory</Table.Th><Table.Th>Allocated</Table.Th><Table.Th>Workloads</Table.Th><Table.Th>Health</Table.Th><Table.Th>UUID</Table.Th></Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {node.devices.map((d) => (
                      <Table.Tr key={d.index}>
                        <Table.Td>{d.index}</Table.Td>
                        <Table.Td>
                          {d.model}
                          {d.mig_enabled && <Badge ml={4} size="xs" variant="outline">MIG</Badge>}
                        </Table.Td>
                        <Table.Td>{formatMemory(d.memory_mib)}</Table.Td>
                        <Table.Td>
                          <Progress value={Math.min(d.allocated_milli / 10, 100)} aria-label={`GPU ${d.index} allocated ${d.allocated_milli / 10}%`} />
                          <Text size="xs">{d.allocated_milli === 0 ? "free" : d.allocated_milli >= 1000 ? "whole GPU" : `${d.allocated_milli / 1000} shared`}</Text>
                        </Table.Td>
                        <Table.Td>
                          {(d.tenants ?? []).map((t) => (
                            <Text size="xs" key={`${t.workload_id}/${t.replica}`}>
                              <WorkloadLink id={t.workload_id}>{t.workload_name}</WorkloadLink> ({t.workspace}
                              {t.mig_profile ? `, MIG ${t.mig_profile}` : t.gpu_milli < 1000 ? `, ${t.gpu_milli / 1000} GPU` : ""})
                            </Text>
                          ))}
                          {!!d.other_tenants && <Text size="xs" c="dimmed">+{d.other_tenants} of other workspaces</Text>}
                          {!d.tenants?.length && !d.other_tenants && <Text size="xs" c="dimmed">—</Text>}
                        </Table.Td>
                        <Table.Td>{d.healthy ? <Badge color="green" variant="light">healthy</Badge> : <Badge color="red">unhealthy</Badge>}</Table.Td>
                        <Table.Td><Text size="xs" ff="monospace">{d.uuid ?? "—"}</Text></Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              )}
              {node.devices.length > 0 && <NodeGpuUsage node={node.name} />}
            </Card>
          ))}
        </Stack>
      </QueryState>
    </Stack>
  );
}
