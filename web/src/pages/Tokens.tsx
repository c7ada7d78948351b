import { Alert, Badge, Button, Checkbox, Code, CopyButton, Group, NumberInput, Stack, Switch, Table, Text, TextInput, Title } from "@mantine/core";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { api, unwrap, type Token } from "../api/client";
import { keys, useMe, useTokens } from "../api/queries";
import { ProblemAlert, QueryState } from "../components/Problem";
import { formatTime } from "../lib/format";

const KIND_LABELS: Record<string, string> = { api: "API token", session: "CLI session", browser: "browser session" };

export function TokensPage() {
  const me = useMe();
  const admin = me.data?.admin ?? false;
  const [everyone, setEveryone] = useState(false);
  const tokens = useTokens(admin && everyone);
  const client = useQueryClient();
  const [name, setName] = useState("");
  const [days, setDays] = useState<number | string>("");
  const [readOnly, setReadOnly] = useState(false);
  const [created, setCreated] = useState<Token | null>(null);
  const create = useMutation({
    mutationFn: () =>
      unwrap(api.POST("/api/v1/auth/tokens", { body: { name, expires_in_days: days === "" ? null : Number(days), read_only: readOnly } })),
    onSuccess: (token) => {
      setCreated(token);
      setName("");
      setReadOnly(false);
      void client.invalidateQueries({ queryKey: keys.tokens });
    },
  });
  const revoke = useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE("/api/v1/auth/tokens/{token_id}", { params: { path: { token_id: id } } })),
    onSuccess: () => void client.invalidateQueries({ queryKey: keys.tokens }),
  });

  function onCreate(event: FormEvent) {
    event.preventDefault();
    create.mutate();
  }

  return (
    <Stack maw={1100}>
      <Title order={2}>API tokens and sessions</Title>
      <Text size="sm" c="dimmed">
        An API token is for scripts and CI (`ASTRAGO_TOKEN=…`); it acts as you, with your roles, or only reads when read-only. Your sign-in
        sessions are listed too: revoking one signs that browser or CLI out.
      </Text>
      <form onSubmit={onCreate} aria-label="Create a token">
        <Group align="end">
          <TextInput label="Name" required placeholder="e.g. ci-pipeline" value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <NumberInput label="Expires in (days)" description="empty: 90 days" placeholder="90" min={1} max={3650} value={days} onChange={setDays} w={170} />
          <Checkbox mb={8} label="Read-only (GET only)" checked={readOnly} onChange={(e) => setReadOnly(e.currentTarget.checked)} />
          <Button type="submit" loading={create.isPending}>Create token</Button>
        </Group>
      </form>
      <ProblemAlert error={create.error ?? revoke.error} />
      {created?.token && (
        <Alert color="green" title="Token created: copy it now, it is not shown again" data-testid="new-token">
          <Stack gap="xs">
            <Group>
              <Code>{created.token}</Code>
              <CopyButton value={created.token}>{({ copied, copy }) => <Button size="xs" onClick={copy}>{copied ? "Copied" : "Copy"}</Button>}</CopyButton>
              <Button size="xs" variant="subtle" onClick={() => setCreated(null)}>Done</Button>
            </Group>
            <Text size="sm">
              {created.scope === "read" ? "Read-only" : "Full access"}; expires {created.expires_at ? formatTime(created.expires_at) : "never"}.
            </Text>
          </Stack>
        </Alert>
      )}
      {admin && (
        <Switch label="Everyone's tokens and sessions (admin)" checked={everyone} onChange={(e) => setEveryone(e.currentTarget.checked)} />
      )}
      <QueryState query={tokens} empty="No tokens yet.">
        <Table striped>
          <Table.Thead>
            <Table.Tr>
              {everyone && <Table.Th>User</Table.Th>}
              <Table.Th>Name</Table.Th><Table.Th>Kind</Table.Th><Table.Th>Scope</Table.Th><Table.Th>Created</Table.Th><Table.Th>Expires</Table.Th><Table.Th>Last used</Table.Th><Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {(tokens.data ?? []).map((t) => (
              <Table.Tr key={t.id} data-token={t.name} data-owner={t.username}>
                {everyone && <Table.Td>{t.username}</Table.Td>}
                <Table.Td>{t.name}</Table.Td>
                <Table.Td>{KIND_LABELS[t.kind] ?? t.kind}</Table.Td>
                <Table.Td>
                  <Badge size="sm" variant="light" color={t.scope === "read" ? "gray" : "blue"}>{t.scope === "read" ? "read-only" : "full"}</Badge>
                </Table.Td>
                <Table.Td>{formatTime(t.created_at)}</Table.Td>
                <Table.Td>{t.expires_at ? formatTime(t.expires_at) : "never"}</Table.Td>
                <Table.Td>{t.last_used_at ? formatTime(t.last_used_at) : "never"}</Table.Td>
                <Table.Td>
                  <Button size="xs" color="red" variant="light" onClick={() => revoke.mutate(t.id)} aria-label={`Revoke ${t.name}`}>Revoke</Button>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </QueryState>
    </Stack>
  );
}
