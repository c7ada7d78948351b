import { Badge, Button, Group, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useNavigate, useSearch } from "@tanstack/react-router";
import { useEffect, useState, type FormEvent } from "react";

import { ApiError } from "../api/client";
import { AUDIT_PAGE_SIZE, useAuditPages, useMe, type AuditSearch } from "../api/queries";
import { ProblemAlert, QueryState } from "../components/Problem";
import { formatTime } from "../lib/format";

export type { AuditSearch };
export const AUDIT_RESULTS = ["ok", "denied", "invalid", "error"] as const;
const TEXT_FILTERS = ["actor", "action", "target", "workspace"] as const;
const RESULT_COLORS: Record<string, string> = { ok: "green", denied: "orange", invalid: "yellow", error: "red" };

/** The URL's search (shareable, survives a reload) as the API's filters; unknown values are dropped. */
export function parseAuditSearch(search: Record<string, unknown>): AuditSearch {
  const parsed: AuditSearch = {};
  for (const key of TEXT_FILTERS) {
    const value = search[key];
    if (typeof value === "string" && value.trim()) parsed[key] = value.trim();
  }
  if (typeof search.result === "string" && (AUDIT_RESULTS as readonly string[]).includes(search.result)) {
    parsed.result = search.result as AuditSearch["result"];
  }
  for (const key of ["since", "until"] as const) {
    const value = search[key];
    if (typeof value === "string" && !Number.isNaN(Date.parse(value))) parsed[key] = new Date(value).toISOString();
  }
  return parsed;
}

/** An ISO instant as a datetime-local input's value, in the viewer's zone (and back). */
export function toLocalInput(iso: string | undefined): string {
  if (!iso) return "";
  const date = new Date(iso);
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

export function fromLocalInput(value: string): string | undefined {
  return value ? new Date(value).toISOString() : undefined;
}

export function AuditPage() {
  const me = useMe();
  const admin = me.data?.admin ?? false;
  const search = useSearch({ from: "/app/audit" });
  const navigate = useNavigate({ from: "/audit" });
  const audit = useAuditPages(search, admin);
  const [draft, setDraft] = useState(() => draftOf(search));
  useEffect(() => setDraft(draftOf(search)), [search]);

  if (me.data && !admin) return <ProblemAlert error={new ApiError(403, "Forbidden", "only a platform admin can read the audit trail")} />;

  function apply(next: AuditSearch) {
    void navigate({ search: parseAuditSearch(next as Record<string, unknown>) });
  }
  function onSubmit(event: FormEvent) {
    event.preventDefault();
    apply({ ...search, ...draft, since: fromLocalInput(draft.since), until: fromLocalInput(draft.until) });
  }
  const rows = audit.data?.pages.flat() ?? [];
  const filtered = Object.keys(search).length > 0;
  return (
    <Stack>
      <Title order={2}>Audit log</Title>
      <form onSubmit={onSubmit} role="search" aria-label="Filter the audit log">
        <Group align="end">
          <TextInput label="Actor" placeholder="username" value={draft.actor} onChange={(e) => setDraft({ ...draft, actor: e.currentTarget.value })} w={140} />
          <TextInput label="Action" placeholder="workload or workload.submit" value={draft.action} onChange={(e) => setDraft({ ...draft, action: e.currentTarget.value })} />
          <TextInput label="Target" placeholder="exact: id or name" value={draft.target} onChange={(e) => setDraft({ ...draft, target: e.currentTarget.value })} w={160} />
          <TextInput label="Workspace" value={draft.workspace} onChange={(e) => setDraft({ ...draft, workspace: e.currentTarget.value })} w={140} />
          <Select
            label="Result"
            clearable
            data={[...AUDIT_RESULTS]}
            value={search.result ?? null}
            onChange={(v) => apply({ ...search, result: (v ?? undefined) as AuditSearch["result"] })}
            w={120}
          />
          <TextInput label="Since" type="datetime-local" value={draft.since} onChange={(e) => setDraft({ ...draft, since: e.currentTarget.value })} />
          <TextInput label="Until" type="datetime-local" value={draft.until} onChange={(e) => setDraft({ ...draft, until: e.currentTarget.value })} />
          <Button type="submit">Search</Button>
          {filtered && (
            <Button variant="subtle" onClick={() => apply({})}>
              Clear
            </Button>
          )}
        </Group>
      </form>
      <Text size="sm" c="dimmed" data-testid="audit-count">
        {rows.length} {filtered ? "matching " : ""}records, newest first{audit.hasNextPage ? "; more are older" : ""}
      </Text>
      <QueryState query={audit} empty={filtered ? "No record matches these filters." : "Nothing recorded yet."}>
        <Table striped>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Time</Table.Th><Table.Th>Actor</Table.Th><Table.Th>Action</Table.Th><Table.Th>Target</Table.Th><Table.Th>Workspace</Table.Th>
              <Table.Th>Result</Table.Th><Table.Th>Detail</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.map((r) => (
              <Table.Tr key={r.id} data-audit-id={r.id}>
                <Table.Td>{formatTime(r.created_at)}</Table.Td>
                <Table.Td>{r.actor ?? "anonymous"}</Table.Td>
                <Table.Td>{r.action}</Table.Td>
                <Table.Td>{r.target ?? "—"}</Table.Td>
                <Table.Td>{r.workspace ?? "—"}</Table.Td>
                <Table.Td><Badge color={RESULT_COLORS[r.result] ?? "gray"} variant="light">{r.result}</Badge></Table.Td>
                <Table.Td><Text size="xs">{r.detail}</Text></Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </QueryState>
      {audit.hasNextPage && (
        <Button variant="default" onClick={() => void audit.fetchNextPage()} loading={audit.isFetchingNextPage} w={200}>
          Older records ({AUDIT_PAGE_SIZE} more)
        </Button>
      )}
    </Stack>
  );
}

function draftOf(search: AuditSearch) {
  return {
    actor: search.actor ?? "",
    action: search.action ?? "",
    target: search.target ?? "",
    workspace: search.workspace ?? "",
    since: toLocalInput(search.since ?? undefined),
    until: toLocalInput(search.until ?? undefined),
  };
}
