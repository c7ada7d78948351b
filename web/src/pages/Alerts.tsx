import { Badge, Button, SegmentedControl, Stack, Table, Tabs, Text, Title } from "@mantine/core";
import { useState } from "react";

import { useAlerts, useDeliveries, useResolveAlert, type AlertInfo, type AlertStateName, type Delivery } from "../api/alerts";
import { useMe } from "../api/queries";
import { ProblemAlert, QueryState } from "../components/Problem";
import { WorkloadLink } from "../components/WorkloadLink";
import { formatTime } from "../lib/format";

const SEVERITY_COLORS: Record<string, string> = { info: "blue", warning: "orange", critical: "red" };
const DELIVERY_COLORS: Record<string, string> = { pending: "yellow", delivered: "green", failed: "red" };

export function AlertsTable({ alerts, onResolve }: { alerts: AlertInfo[]; onResolve?: (id: number) => void }) {
  return (
    <Table striped aria-label="Alerts">
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Opened</Table.Th><Table.Th>Severity</Table.Th><Table.Th>Rule</Table.Th><Table.Th>About</Table.Th>
          <Table.Th>Summary</Table.Th><Table.Th>State</Table.Th><Table.Th />
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {alerts.map((a) => (
          <Table.Tr key={a.id} data-testid="alert-row">
            <Table.Td>{formatTime(a.opened_at)}</Table.Td>
            <Table.Td><Badge color={SEVERITY_COLORS[a.severity] ?? "gray"} variant="light">{a.severity}</Badge></Table.Td>
            <Table.Td>{a.rule}</Table.Td>
            <Table.Td>{a.workload_id ? <WorkloadLink id={a.workload_id}>{a.workload_id}</WorkloadLink> : (a.node ?? a.workspace ?? a.key)}</Table.Td>
            <Table.Td><Text size="sm">{a.summary}</Text>{a.resolution && <Text size="xs" c="dimmed">Resolved: {a.resolution}</Text>}</Table.Td>
            <Table.Td>{a.state === "firing" ? <Badge color="red">firing</Badge> : <Text size="sm" c="dimmed">resolved {formatTime(a.resolved_at)}</Text>}</Table.Td>
            <Table.Td>{a.state === "firing" && onResolve && <Button size="xs" variant="default" onClick={() => onResolve(a.id)}>Resolve</Button>}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

export function DeliveriesTable({ deliveries }: { deliveries: Delivery[] }) {
  return (
    <Table striped aria-label="Deliveries">
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Queued</Table.Th><Table.Th>Alert</Table.Th><Table.Th>Channel</Table.Th><Table.Th>Event</Table.Th>
          <Table.Th>Status</Table.Th><Table.Th>Attempts</Table.Th><Table.Th>Last error</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {deliveries.map((d) => (
          <Table.Tr key={d.id}>
            <Table.Td>{formatTime(d.created_at)}</Table.Td>
            <Table.Td>{d.alert_id} ({d.rule})</Table.Td>
            <Table.Td>{d.channel}</Table.Td>
            <Table.Td>{d.event}</Table.Td>
            <Table.Td>
              <Badge color={DELIVERY_COLORS[d.status] ?? "gray"} variant="light">{d.status}</Badge>
              {d.next_attempt_at && <Text size="xs" c="dimmed">next try {formatTime(d.next_attempt_at)}</Text>}
            </Table.Td>
            <Table.Td>{d.attempts}</Table.Td>
            <Table.Td><Text size="xs">{d.last_error ?? ""}</Text></Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

export function AlertsPage() {
  const me = useMe();
  const admin = me.data?.admin ?? false;
  const [state, setState] = useState<AlertStateName | "all">("firing");
  const alerts = useAlerts(state);
  const deliveries = useDeliveries(admin);
  const resolve = useResolveAlert();
  return (
    <Stack>
      <Title order={2}>Alerts</Title>
      <Tabs defaultValue="alerts">
        <Tabs.List>
          <Tabs.Tab value="alerts">Alerts{alerts.data ? ` (${alerts.data.open_count} open)` : ""}</Tabs.Tab>
          {admin && <Tabs.Tab value="deliveries">Deliveries</Tabs.Tab>}
        </Tabs.List>
        <Tabs.Panel value="alerts" pt="sm">
          <SegmentedControl
            aria-label="Which alerts"
            value={state}
            onChange={(v) => setState(v as AlertStateName | "all")}
            data={[{ value: "firing", label: "Open" }, { value: "resolved", label: "Resolved" }, { value: "all", label: "All" }]}
            mb="sm"
          />
          <ProblemAlert error={resolve.error} />
          <QueryState query={alerts} empty={state === "firing" ? "No open alerts." : "No alerts."}>
            {alerts.data && alerts.data.items.length > 0 ? (
              <AlertsTable alerts={alerts.data.items} onResolve={(id) => resolve.mutate(id)} />
            ) : (
              <Text c="dimmed">{state === "firing" ? "No open alerts." : "No alerts."}</Text>
            )}
          </QueryState>
        </Tabs.Panel>
        {admin && (
          <Tabs.Panel value="deliveries" pt="sm">
            <Text size="sm" c="dimmed" mb="xs">Each notification to each channel: failed attempts are retried with backoff.</Text>
            <QueryState query={deliveries} empty="Nothing delivered yet.">
              <DeliveriesTable deliveries={deliveries.data ?? []} />
            </QueryState>
          </Tabs.Panel>
        )}
      </Tabs>
    </Stack>
  );
}
