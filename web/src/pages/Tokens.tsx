import { Alert, Button, Code, CopyButton, Group, NumberInput, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { api, unwrap, type Token } from "../api/client";
import { keys, useTokens } from "../api/queries";
import { ProblemAlert, QueryState } from "../components/Problem";
import { formatTime } from "../lib/format";

export function TokensPage() {
  const tokens = useTokens();
  const client = useQueryClient();
  const [name, setName] = useState("");
  const [days, setDays] = useState<number | string>(90);
  const [created, setCreated] = useState<Token | null>(null);
  const create = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/auth/tokens", { body: { name, expires_in_days: days === "" ? null : Number(days) } })),
    onSuccess: (token) => {
      setCreated(token);
      setName("");
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
    <Stack maw={1000}>
      <Title order={2}>API tokens</Title>
      <Text size="sm" c="dimmed">For scripts and the CLI (`ASTRAGO_TOKEN=…`). A token acts as you, with your roles.</Text>
      <form onSubmit={onCreate} aria-label="Create a token">
        <Group align="end">
          <TextInput label="Name" required placeholder="e.g. ci-pipeline" value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <NumberInput label="Expires in (days)" description="empty: never" min={1} max={3650} value={days} onChange={setDays} w={170} />
          <Button type="submit" loading={create.isPending}>Create token</Button>
        </Group>
      </form>
      <ProblemAlert error={create.error ?? revoke.error} />
      {created?.token && (
        <Alert color="green" title="Token created: copy it now, it is not shown again" data-testid="new-token">
          <Group>
            <Code>{created.token}</Code>
            <CopyButton value={created.token}>{({ copied, copy }) => <Button size="xs" onClick={copy}>{copied ? "Copied" : "Copy"}</Button>}</CopyButton>
            <Button size="xs" variant="subtle" onClick={() => setCreated(null)}>Done</Button>
          </Group>
        </Alert>
      )}
      <QueryState query={tokens} empty="No tokens yet.">
        <Table striped>
          <Table.Thead>
            <Table.Tr><Table.Th>Name</Table.Th><Table.Th>Kind</Table.Th><Table.Th>Created</Table.Th><Table.Th>Expires</Table.Th><Table.Th>Last used</Table.Th><Table.Th /></Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {(tokens.data ?? []).map((t) => (
              <Table.Tr key={t.id} data-token={t.name}>
                <Table.Td>{t.name}</Table.Td>
                <Table.Td>{t.kind}</Table.Td>
                <Table.Td>{formatTime(t.created_at)}</Table.Td>
                <Table.Td>{t.expires_at ? formatTime(t.expires_at) : "never"}</Table.Td>
                <Table.Td>{formatTime(t.last_used_at)}</Table.Td>
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
