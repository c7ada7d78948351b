import { Button, Card, Group, Modal, NumberInput, Select, SimpleGrid, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";

import { ApiError, api, unwrap, type Quota, type QuotaSet, type WorkspaceInfo, type WorkspaceRole } from "../api/client";
import { keys, useMe, useQuota, useWorkspaces } from "../api/queries";
import { ProblemAlert, QueryState } from "../components/Problem";
import { UsageBar } from "../components/UsageBar";

const ROLES: WorkspaceRole[] = ["viewer", "member", "manager"];

function QuotaEditor({ workspace, quota, onClose }: { workspace: string; quota: Quota | undefined; onClose: () => void }) {
  const client = useQueryClient();
  const gpu = quota?.entries.find((e) => e.resource === "gpu");
  const [guaranteed, setGuaranteed] = useState<number | string>(gpu?.guaranteed ?? 0);
  const [limit, setLimit] = useState<number | string>(gpu?.limit ?? "");
  const save = useMutation({
    mutationFn: (body: QuotaSet) => unwrap(api.PUT("/api/v1/workspaces/{name}/quota", { params: { path: { name: workspace } }, body })),
    onSuccess: (q) => {
      client.setQueryData(keys.quota(workspace), q);
      onClose();
    },
  });
  const fields = save.error instanceof ApiError ? save.error.fieldErrors() : {};
  function onSave(event: FormEvent) {
    event.preventDefault();
    save.mutate({ gpu_guaranteed: Number(guaranteed), gpu_limit: limit === "" ? -1 : Number(limit) });
  }
  return (
    <form onSubmit={onSave} aria-label={`Edit the GPU quota of ${workspace}`}>
      <Stack>
        <NumberInput label="Guaranteed GPUs" min={0} step={1} decimalScale={3} value={guaranteed} onChange={setGuaranteed} error={fields.gpu_guaranteed} />
        <NumberInput label="GPU limit" description="empty: no limit (may borrow any idle GPU)" min={0} step={1} decimalScale={3} value={limit} onChange={setLimit} error={fields.gpu_limit} />
        {!(save.error instanceof ApiError && save.error.allAbout(["gpu_guaranteed", "gpu_limit"])) && <ProblemAlert error={save.error} />}
        <Group justify="end">
          <Button variant="default" onClick={onClose}>Close</Button>
          <Button type="submit" loading={save.isPending}>Save quota</Button>
        </Group>
      </Stack>
    </form>
  );
}

function WorkspaceCard({ workspace, admin }: { workspace: WorkspaceInfo; admin: boolean }) {
  const client = useQueryClient();
  const quota = useQuota(workspace.name);
  const [editing, setEditing] = useState(false);
  const [member, setMember] = useState("");
  const [role, setRole] = useState<WorkspaceRole>("member");
  const manages = admin || workspace.my_role === "manager";
  const refresh = () => void client.invalidateQueries({ queryKey: keys.workspaces });
  const addMember = useMutation({
    mutationFn: () => unwrap(api.PUT("/api/v1/workspaces/{name}/members", { params: { path: { name: workspace.name } }, body: { username: member, role } })),
    onSuccess: () => {
      setMember("");
      refresh();
    },
  });
  const removeMember = useMutation({
    mutationFn: (username: string) => unwrap(api.DELETE("/api/v1/workspaces/{name}/members/{username}", { params: { path: { name: workspace.name, username } } })),
    onSuccess: refresh,
  });
  return (
    <Card withBorder data-workspace={workspace.name}>
      <Group justify="space-between">
        <Title order={4}>{workspace.name}</Title>
        <Text size="sm" c="dimmed">{workspace.my_role ? `your role: ${workspace.my_role}` : admin ? "admin" : ""}</Text>
      </Group>
      {workspace.description && <Text size="sm">{workspace.description}</Text>}
      <Group justify="space-between" mt="md" mb={4}>
        <Text fw={600}>Quota and use</Text>
        {admin && <Button size="xs" variant="light" onClick={() => setEditing(true)}>Edit quota</Button>}
      </Group>
      <QueryState query={quota}>
        <Stack gap="xs" data-testid={`quota-${workspace.name}`}>
          {quota.data?.entries.length === 0 && <Text size="sm" c="dimmed">No quota: may use whatever is free.</Text>}
          {quota.data?.entries.map((e) => (
            <UsageBar key={e.resource} label={e.resource} used={e.used} guaranteed={e.guaranteed} limit={e.limit ?? null} unit={e.unit} />
          ))}
        </Stack>
      </QueryState>
      <Text fw={600} mt="md">Members</Text>
      <Table>
        <Table.Tbody>
          {(workspace.members ?? []).map((m) => (
            <Table.Tr key={m.username}>
              <Table.Td>{m.username}</Table.Td>
              <Table.Td>{m.role}</Table.Td>
              <Table.Td>
                {manages && (
                  <Button size="compact-xs" variant="subtle" color="red" onClick={() => removeMember.mutate(m.username)} aria-label={`Remove ${m.username}`}>Remove</Button>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {manages && (
        <form onSubmit={(e) => { e.preventDefault(); addMember.mutate(); }} aria-label={`Add a member to ${workspace.name}`}>
          <Group align="end" mt="xs">
            <TextInput label="Username" required value={member} onChange={(e) => setMember(e.currentTarget.value)} />
            <Select label="Role" data={ROLES} value={role} onChange={(v) => setRole((v ?? "member") as WorkspaceRole)} w={120} />
            <Button type="submit" variant="light" loading={addMember.isPending}>Add or change</Button>
          </Group>
        </form>
      )}
      <ProblemAlert error={addMember.error ?? removeMember.error} />
      <Modal opened={editing} onClose={() => setEditing(false)} title={`GPU quota of ${workspace.name}`}>
        <QuotaEditor workspace={workspace.name} quota={quota.data} onClose={() => setEditing(false)} />
      </Modal>
    </Card>
  );
}

export function WorkspacesPage() {
  const me = useMe();
  const workspaces = useWorkspaces();
  const client = useQueryClient();
  const admin = me.data?.admin ?? false;
  const [name, setName] = useState("");
  const create = useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/workspaces", { body: { name } })),
    onSuccess: () => {
      setName("");
      void client.invalidateQueries({ queryKey: keys.workspaces });
    },
  });
  return (
    <Stack>
      <Title order={2}>Workspaces</Title>
      {admin && (
        <form onSubmit={(e) => { e.preventDefault(); create.mutate(); }} aria-label="Create a workspace">
          <Group align="end">
            <TextInput label="New workspace" placeholder="e.g. vision-team" required value={name} onChange={(e) => setName(e.currentTarget.value)} />
            <Button type="submit" loading={create.isPending}>Create</Button>
          </Group>
        </form>
      )}
      <ProblemAlert error={create.error} />
      <QueryState query={workspaces} empty="You are not a member of any workspace yet.">
        <SimpleGrid cols={{ base: 1, lg: 2 }}>
          {(workspaces.data ?? []).map((w) => (
            <WorkspaceCard key={w.name} workspace={w} admin={admin} />
          ))}
        </SimpleGrid>
      </QueryState>
    </Stack>
  );
}
