import { Badge, Group, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useMemo, useState } from "react";

import { ApiError, type AuditRecord } from "../api/client";
import { useAudit, useMe } from "../api/queries";
import { ProblemAlert, QueryState } from "../components/Problem";
import { formatTime } from "../lib/format";

export interface AuditFilter {
  actor: string;
  action: string;
  result: string | null;
  since: string; // datetime-local value, in the viewer's zone
}

export function filterAudit(records: AuditRecord[], f: AuditFilter): AuditRecord[] {
  const since = f.since ? new Date(f.since).getTime() : null;
  return records.filter(
    (r) =>
      (!f.actor || (r.actor ?? "").toLowerCase().includes(f.actor.toLowerCase())) &&
      (!f.action || r.action.includes(f.action)) &&
      (!f.result || r.result === f.result) &&
      (since === null || Date.parse(r.created_at) >= since),
  );
}

const RESULT_COLORS: Record<string, string> = { ok: "green", denied: "orange", invalid: "yellow", error: "red" };

export function AuditPage() {
  const me = useMe();
  const admin = me.data?.admin ?? false;
  const audit = useAudit(admin);
  const [filter, setFilter] = useState<AuditFilter>({ actor: "", action: "", result: null, since: "" });
  const rows = useMemo(() => filterAudit(audit.data ?? [], filter), [audit.data, filter]);
  if (me.data && !admin) return <ProblemAlert error={new ApiError(403, "Forbidden", "only a platform admin can read the audit trail")} />;
  return (
    <Stack>
      <Title order={2}>Audit log</Title>
      <Group align="end" role="search" aria-label="Filter the audit log">
        <TextInput label="Actor" value={filter.actor} onChange={(e) => setFilter({ ...filter, actor: e.currentTarget.value })} />
        <TextInput label="Action" placeholder="e.g. workload.submit" value={filter.action} onChange={(e) => setFilter({ ...filter, action: e.currentTarget.value })} />
        <Select label="Result" clearable data={["ok", "denied", "invalid", "error"]} value={filter.result} onChange={(v) => setFilter({ ...filter, result: v })} w={130} />
        <TextInput label="Since" type="datetime-local" value={filter.since} onChange={(e) => setFilter({ ...filter, since: e.currentTarget.value })} />
      </Group>
      <Text size="sm" c="dimmed">{rows.length} of the latest {audit.data?.length ?? 0} records</Text>
      <QueryState query={audit} empty="Nothing recorded yet.">
        <Table striped>
          <Table.Thead>
            <Table.Tr><Table.Th>Time</Table.Th><Table.Th>Actor</Table.Th><Table.Th>Action</Table.Th><Table.Th>Target</Table.Th><Table.Th>Result</Table.Th><Table.Th>Detail</Table.Th></Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.map((r) => (
              <Table.Tr key={r.id}>
                <Table.Td>{formatTime(r.created_at)}</Table.Td>
                <Table.Td>{r.actor ?? "anonymous"}</Table.Td>
                <Table.Td>{r.action}</Table.Td>
                <Table.Td>{r.target ?? "—"}</Table.Td>
                <Table.Td><Badge color={RESULT_COLORS[r.result] ?? "gray"} variant="light">{r.result}</Badge></Table.Td>
                <Table.Td><Text size="xs">{r.detail}</Text></Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </QueryState>
    </Stack>
  );
}
