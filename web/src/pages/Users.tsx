import { Badge, Button, Checkbox, Group, PasswordInput, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { ApiError, api, unwrap } from "../api/client";
import { keys, useMe, useUsers } from "../api/queries";
import { ProblemAlert, QueryState } from "../components/Problem";
import { formatTime } from "../lib/format";

export function UsersPage() {
  const me = useMe();
  const admin = me.data?.admin ?? false;
  const users = useUsers(admin);
  const client = useQueryClient();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [isAdmin, setIsAdmin] = useState(false);
  const create = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/users", { body: { username, password, admin: isAdmin } })),
    onSuccess: () => {
      setUsername("");
      setPassword("");
      setIsAdmin(false);
      void client.invalidateQueries({ queryKey: keys.users });
    },
  });
  const update = useMutation({
    mutationFn: ({ name, active }: { name: string; active: boolean }) =>
      unwrap(api.PATCH("/api/v1/users/{username}", { params: { path: { username: name } }, body: { active } })),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: keys.users });
      void client.invalidateQueries({ queryKey: keys.tokens }); // disabling revokes its sessions and tokens
    },
  });
  const [deleting, setDeleting] = useState<string | null>(null);
  const remove = useMutation({
    mutationFn: (name: string) => unwrap(api.DELETE("/api/v1/users/{username}", { params: { path: { username: name } } })),
    onSettled: () => setDeleting(null),
    onSuccess: () => void client.invalidateQueries({ queryKey: keys.users }),
  });
  const fields = create.error instanceof ApiError ? create.error.fieldErrors() : {};

  if (me.data && !admin) {
    return <ProblemAlert error={new ApiError(403, "Forbidden", "only a platform admin can list and create users")} />;
  }
  function onCreate(event: FormEvent) {
    event.preventDefault();
    create.mutate();
  }
  return (
    <Stack maw={1100}>
      <Title order={2}>Users</Title>
      <form onSubmit={onCreate} aria-label="Create a user">
        <Group align="start">
          <TextInput label="Username" required value={username} onChange={(e) => setUsername(e.currentTarget.value)} error={fields.username} />
          <PasswordInput label="Initial password" description="at least 8 characters" required value={password} onChange={(e) => setPassword(e.currentTarget.value)} error={fields.password} />
          <Checkbox mt={32} label="Platform admin" checked={isAdmin} onChange={(e) => setIsAdmin(e.currentTarget.checked)} />
          <Button mt={24} type="submit" loading={create.isPending}>Create user</Button>
        </Group>
      </form>
      {!(create.error instanceof ApiError && create.error.allAbout(["username", "password"])) && <ProblemAlert error={create.error} />}
      <Text size="sm" c="dimmed">
        Disabling an account ends its sessions and revokes its API tokens at once; its workloads keep running. An account is deleted only when it
        has no unfinished workloads. Revoke single tokens under API tokens (everyone&apos;s).
      </Text>
      <ProblemAlert error={update.error ?? remove.error} />
      <QueryState query={users} empty="No users.">
        <Table striped>
          <Table.Thead>
            <Table.Tr><Table.Th>Username</Table.Th><Table.Th>Role</Table.Th><Table.Th>Workspaces</Table.Th><Table.Th>Sign-in</Table.Th><Table.Th>Status</Table.Th><Table.Th>Last sign-in</Table.Th><Table.Th /></Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {(users.data ?? []).map((u) => (
              <Table.Tr key={u.id} data-user={u.username}>
                <Table.Td>{u.username}</Table.Td>
                <Table.Td>{u.admin ? "admin" : "user"}</Table.Td>
                <Table.Td><Text size="sm">{Object.entries(u.workspaces ?? {}).map(([w, r]) => `${w} (${r})`).join(", ") || "—"}</Text></Table.Td>
                <Table.Td>{u.source === "oidc" ? "SSO" : "local"}</Table.Td>
                <Table.Td>
                  <Badge size="sm" variant="light" color={u.active ? "green" : "gray"}>{u.active ? "active" : "disabled"}</Badge>
                </Table.Td>
                <Table.Td>{formatTime(u.last_login_at)}</Table.Td>
                <Table.Td>
                  {u.username !== me.data?.username && (
                    <Group gap="xs" wrap="nowrap">
                      <Button size="xs" variant="light" color={u.active ? "orange" : "green"} onClick={() => update.mutate({ name: u.username, active: !u.active })}>
                        {u.active ? "Disable" : "Enable"}
                      </Button>
                      {deleting === u.username ? (
                        <Button size="xs" color="red" loading={remove.isPending} onClick={() => remove.mutate(u.username)}>
                          Confirm delete
                        </Button>
                      ) : (
                        <Button size="xs" variant="subtle" color="red" onClick={() => setDeleting(u.username)}>
                          Delete
                        </Button>
                      )}
                    </Group>
                  )}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </QueryState>
    </Stack>
  );
}
