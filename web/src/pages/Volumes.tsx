// Volumes of a workspace: usage against each volume's size and the workspace's storage quota; create,
// rename, delete; browse a volume's folders, download files, and upload files and folders by drag and
// drop (or pickers) over TUS, with per-file progress, cancel, and resume after a reload.
import {
  Anchor,
  Badge,
  Breadcrumbs,
  Button,
  Card,
  Group,
  Modal,
  Paper,
  Progress,
  Select,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useNavigate, useSearch } from "@tanstack/react-router";
import { useEffect, useMemo, useRef, useState, type DragEvent, type FormEvent } from "react";

import { ApiError, api, unwrap, type Schemas } from "../api/client";
import { keys, useQuota, useWorkspaces } from "../api/queries";
import { authHeaders } from "../auth/session";
import { ProblemAlert, QueryState } from "../components/Problem";
import { UsageBar } from "../components/UsageBar";
import { formatAgo } from "../lib/format";
import { FileUpload, UploadQueue, droppedFiles, pickedFiles, type PickedFile, type UploadItem } from "../lib/uploads";

type Volume = Schemas["VolumeOut"];
type VolumeKind = Volume["kind"];
const KINDS: VolumeKind[] = ["dataset", "model", "code", "scratch"];

export interface VolumesSearch {
  workspace?: string;
  volume?: string;
  path?: string;
}

/** 1536 → "1.5 KiB": binary units, as the CLI prints them. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

const volumeKeys = {
  list: (workspace: string) => ["volumes", workspace] as const,
  one: (workspace: string, name: string) => ["volumes", workspace, name] as const,
  files: (workspace: string, name: string, path: string) => ["volume-files", workspace, name, path] as const,
};

function uploadsEndpoint(workspace: string, volume: string): string {
  const path = `/api/v1/workspaces/${encodeURIComponent(workspace)}/volumes/${encodeURIComponent(volume)}/uploads`;
  return `${window.location.origin}${path}`;
}

export function VolumeUsage({ volume }: { volume: Volume }) {
  const limit = volume.size_limit ?? null;
  const percent = limit ? Math.min((volume.used_bytes / limit) * 100, 100) : 0;
  return (
    <Stack gap={2} miw={180}>
      <Text size="xs">
        {formatBytes(volume.used_bytes)} in {volume.used_files} file{volume.used_files === 1 ? "" : "s"}
        {limit !== null ? ` of ${formatBytes(limit)}` : " (no size of its own)"}
      </Text>
      {limit !== null && (
        <Progress value={percent} color={percent > 90 ? "red" : "blue"} aria-label={`${volume.name}: ${formatBytes(volume.used_bytes)} of ${formatBytes(limit)}`} />
      )}
    </Stack>
  );
}

function CreateVolume({ workspace }: { workspace: string }) {
  const client = useQueryClient();
  const [name, setName] = useState("");
  const [kind, setKind] = useState<VolumeKind>("dataset");
  const [size, setSize] = useState("");
  const create = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/v1/workspaces/{workspace}/volumes", {
          params: { path: { workspace } },
          body: { name, kind, size: size.trim() || null, description: "" },
        }),
      ),
    onSuccess: () => {
      setName("");
      setSize("");
      void client.invalidateQueries({ queryKey: volumeKeys.list(workspace) });
    },
  });
  const fields = create.error instanceof ApiError ? create.error.fieldErrors() : {};
  function onCreate(event: FormEvent) {
    event.preventDefault();
    create.mutate();
  }
  return (
    <form onSubmit={onCreate} aria-label="Create a volume">
      <Group align="end">
        <TextInput label="New volume" placeholder="e.g. imagenet" required value={name} onChange={(e) => setName(e.currentTarget.value)} error={fields.name} />
        <Select label="Kind" data={KINDS} value={kind} onChange={(v) => setKind((v ?? "dataset") as VolumeKind)} w={130} allowDeselect={false} />
        <TextInput label="Size" placeholder="e.g. 10Gi (empty: the workspace's limit)" value={size} onChange={(e) => setSize(e.currentTarget.value)} error={fields.size} w={280} />
        <Button type="submit" loading={create.isPending}>Create</Button>
      </Group>
      {!(create.error instanceof ApiError && create.error.allAbout(["name", "size"])) && <ProblemAlert error={create.error} />}
    </form>
  );
}

function RenameVolume({ workspace, volume, onClose }: { workspace: string; volume: Volume; onClose: (renamed?: string) => void }) {
  const client = useQueryClient();
  const [name, setName] = useState(volume.name);
  const rename = useMutation({
    mutationFn: () =>
      unwrap(api.PATCH("/api/v1/workspaces/{workspace}/volumes/{name}", { params: { path: { workspace, name: volume.name } }, body: { name } })),
    onSuccess: (renamed) => {
      void client.invalidateQueries({ queryKey: volumeKeys.list(workspace) });
      onClose(renamed.name);
    },
  });
  return (
    <form onSubmit={(e) => { e.preventDefault(); rename.mutate(); }} aria-label={`Rename ${volume.name}`}>
      <Stack>
        <TextInput label="New name" required value={name} onChange={(e) => setName(e.currentTarget.value)} data-autofocus />
        <ProblemAlert error={rename.error} />
        <Group justify="end">
          <Button variant="default" onClick={() => onClose()}>Close</Button>
          <Button type="submit" loading={rename.isPending}>Rename</Button>
        </Group>
      </Stack>
    </form>
  );
}

async function download(workspace: string, volume: string, path: string, name: string): Promise<void> {
  const url = `/api/v1/workspaces/${encodeURIComponent(workspace)}/volumes/${encodeURIComponent(volume)}/download?path=${encodeURIComponent(path)}`;
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { title?: string; detail?: string };
    throw new ApiError(response.status, body.title ?? "Error", body.detail ?? `the server answered ${response.status}`);
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

export function UploadRow({ item, onCancel }: { item: UploadItem; onCancel: () => void }) {
  const percent = item.size ? Math.floor((item.sent / item.size) * 100) : item.status === "done" ? 100 : 0;
  const color = { queued: "gray", uploading: "blue", done: "teal", failed: "red", cancelled: "gray" }[item.status];
  return (
    <Table.Tr data-upload={item.path} data-status={item.status}>
      <Table.Td>{item.path}</Table.Td>
      <Table.Td w={260}>
        <Progress value={percent} color={color} aria-label={`${item.path}: ${percent}%`} />
      </Table.Td>
      <Table.Td w={200}>
        <Text size="xs" data-testid="upload-progress">
          {percent}% · {formatBytes(item.sent)} of {formatBytes(item.size)}
          {item.resumedFrom !== null && ` (resumed at ${formatBytes(item.resumedFrom)})`}
        </Text>
        {item.error && <Text size="xs" c="red">{item.error}</Text>}
      </Table.Td>
      <Table.Td w={110}>
        <Badge color={color} variant="light">{item.status}</Badge>
      </Table.Td>
      <Table.Td w={90}>
        {(item.status === "queued" || item.status === "uploading") && (
          <Button size="compact-xs" variant="subtle" color="red" onClick={onCancel} aria-label={`Cancel ${item.path}`}>Cancel</Button>
        )}
      </Table.Td>
    </Table.Tr>
  );
}

function VolumeBrowser({ workspace, volume, path, onPath }: { workspace: string; volume: string; path: string; onPath: (path: string) => void }) {
  const client = useQueryClient();
  const listing = useQuery({
    queryKey: volumeKeys.files(workspace, volume, path),
    queryFn: () => unwrap(api.GET("/api/v1/workspaces/{workspace}/volumes/{name}/files", { params: { path: { workspace, name: volume }, query: { path } } })),
  });
  const detail = useQuery({
    queryKey: volumeKeys.one(workspace, volume),
    queryFn: () => unwrap(api.GET("/api/v1/workspaces/{workspace}/volumes/{name}", { params: { path: { workspace, name: volume } } })),
  });
  const [uploads, setUploads] = useState<Map<string, FileUpload>>(new Map());
  const [, setTick] = useState(0);
  const [dragging, setDragging] = useState(false);
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const queue = useRef(new UploadQueue());
  const fileInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    folderInput.current?.setAttribute("webkitdirectory", "");
  }, []);

  function refresh() {
    void client.invalidateQueries({ queryKey: ["volume-files", workspace, volume] });
    void client.invalidateQueries({ queryKey: volumeKeys.list(workspace) });
    void client.invalidateQueries({ queryKey: volumeKeys.one(workspace, volume) });
    void client.invalidateQueries({ queryKey: keys.quota(workspace) });
  }

  function enqueue(picked: PickedFile[]) {
    const endpoint = uploadsEndpoint(workspace, volume);
    const added = picked.map(
      (p) =>
        new FileUpload(p, endpoint, path, {
          onChange: (item) => {
            setTick((t) => t + 1);
            if (item.status === "done") refresh();
          },
        }),
    );
    setUploads((current) => {
      const next = new Map(current);
      for (const upload of added) next.set(upload.item.key, upload);
      return next;
    });
    queue.current.add(added);
  }

  async function onDrop(event: DragEvent) {
    event.preventDefault();
    setDragging(false);
    enqueue(await droppedFiles(event.dataTransfer.items, event.dataTransfer.files));
  }

  const items = Array.from(uploads.values(), (u) => u.item);
  const unfinishedOnServer = (detail.data?.uploads ?? []).filter((u) => !uploads.has(`${uploadsEndpoint(workspace, volume)}|/${u.path.replace(/^\//, "")}`));
  const crumbs = path.split("/").filter(Boolean);

  return (
    <Card withBorder data-testid="volume-browser">
      <Group justify="space-between">
        <Title order={4}>{volume}</Title>
        {detail.data && <Text size="sm" c="dimmed">in workloads: ${detail.data.env_var}</Text>}
      </Group>
      <Breadcrumbs my="xs">
        <Anchor component="button" type="button" onClick={() => onPath("/")}>{volume}</Anchor>
        {crumbs.map((part, i) => (
          <Anchor key={i} component="button" type="button" onClick={() => onPath("/" + crumbs.slice(0, i + 1).join("/"))}>{part}</Anchor>
        ))}
      </Breadcrumbs>
      <QueryState query={listing} empty="This folder is empty.">
        <Table data-testid="files">
          <Table.Thead>
            <Table.Tr><Table.Th>Name</Table.Th><Table.Th>Size</Table.Th><Table.Th>Modified</Table.Th><Table.Th /></Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {(listing.data?.entries ?? []).map((entry) => {
              const full = `${path.replace(/\/$/, "")}/${entry.name}`;
              return (
                <Table.Tr key={entry.name} data-file={entry.name}>
                  <Table.Td>
                    {entry.type === "dir" ? (
                      <Anchor component="button" type="button" onClick={() => onPath(full)}>{entry.name}/</Anchor>
                    ) : (
                      entry.name
                    )}
                  </Table.Td>
                  <Table.Td data-testid="file-size" title={`${entry.size} bytes`}>{entry.type === "dir" ? "" : formatBytes(entry.size)}</Table.Td>
                  <Table.Td>{formatAgo(entry.modified)}</Table.Td>
                  <Table.Td>
                    {entry.type === "file" && (
                      <Button size="compact-xs" variant="light" onClick={() => download(workspace, volume, full, entry.name).catch(setDownloadError)} aria-label={`Download ${entry.name}`}>Download</Button>
                    )}
                  </Table.Td>
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      </QueryState>
      <ProblemAlert error={downloadError} title="Download failed" />
      <Paper
        withBorder
        p="lg"
        mt="md"
        data-testid="dropzone"
        data-dragging={dragging || undefined}
        bg={dragging ? "blue.0" : undefined}
        style={{ borderStyle: "dashed", textAlign: "center" }}
        onDragOver={(e: DragEvent) => { e.preventDefault(); setDragging(true); }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e: DragEvent) => void onDrop(e)}
      >
        <Text>Drop files or folders here to upload them into {path === "/" ? "the volume's root" : path}</Text>
        <Group justify="center" mt="xs">
          <Button variant="light" size="xs" onClick={() => fileInput.current?.click()}>Choose files</Button>
          <Button variant="light" size="xs" onClick={() => folderInput.current?.click()}>Choose a folder</Button>
        </Group>
        <input ref={fileInput} type="file" multiple hidden aria-label="Files to upload" onChange={(e) => { enqueue(pickedFiles(e.currentTarget.files)); e.currentTarget.value = ""; }} />
        <input ref={folderInput} type="file" multiple hidden aria-label="Folder to upload" onChange={(e) => { enqueue(pickedFiles(e.currentTarget.files)); e.currentTarget.value = ""; }} />
      </Paper>
      {unfinishedOnServer.length > 0 && (
        <Text size="sm" c="dimmed" mt="sm" data-testid="unfinished">
          Unfinished uploads: {unfinishedOnServer.map((u) => `${u.path} (${formatBytes(u.offset)} of ${formatBytes(u.length)})`).join(", ")}.
          Drop the same file on the same folder again to resume it.
        </Text>
      )}
      {items.length > 0 && (
        <Table mt="sm" data-testid="uploads">
          <Table.Tbody>
            {items.map((item) => (
              <UploadRow key={item.key} item={item} onCancel={() => void uploads.get(item.key)?.cancel().then(refresh)} />
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Card>
  );
}

export function VolumesPage() {
  const search = useSearch({ strict: false }) as VolumesSearch;
  const navigate = useNavigate();
  const client = useQueryClient();
  const workspaces = useWorkspaces();
  const workspace = search.workspace ?? workspaces.data?.[0]?.name ?? "";
  const setSearch = (next: VolumesSearch) => void navigate({ to: "/volumes", search: next });
  const volumes = useQuery({
    queryKey: volumeKeys.list(workspace),
    queryFn: () => unwrap(api.GET("/api/v1/workspaces/{workspace}/volumes", { params: { path: { workspace } } })),
    enabled: workspace !== "",
  });
  const quota = useQuota(workspace);
  const storage = quota.data?.entries.find((e) => e.resource === "storage");
  const [renaming, setRenaming] = useState<Volume | null>(null);
  const remove = useMutation({
    mutationFn: (name: string) => unwrap(api.DELETE("/api/v1/workspaces/{workspace}/volumes/{name}", { params: { path: { workspace, name } } })),
    onSuccess: (_, name) => {
      if (search.volume === name) setSearch({ workspace });
      void client.invalidateQueries({ queryKey: volumeKeys.list(workspace) });
      void client.invalidateQueries({ queryKey: keys.quota(workspace) });
    },
  });
  const totals = useMemo(() => (volumes.data ?? []).reduce((sum, v) => sum + v.used_bytes, 0), [volumes.data]);

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Volumes</Title>
        <Select
          aria-label="Workspace"
          data={(workspaces.data ?? []).map((w) => w.name)}
          value={workspace || null}
          onChange={(v) => v && setSearch({ workspace: v })}
          allowDeselect={false}
          w={220}
        />
      </Group>
      {workspace && (
        <Card withBorder data-testid="storage-quota">
          {storage ? (
            <UsageBar label="storage" used={storage.used} guaranteed={storage.guaranteed} limit={storage.limit ?? null} unit={storage.unit} />
          ) : (
            <Text size="sm">Volumes hold {formatBytes(totals)}; this workspace has no storage limit.</Text>
          )}
        </Card>
      )}
      {workspace && <CreateVolume workspace={workspace} />}
      <ProblemAlert error={remove.error} title="Cannot delete the volume" />
      <QueryState query={workspace ? volumes : { isPending: workspaces.isPending, error: workspaces.error, data: [] }} empty="No volumes yet: create one above, then drop files on it.">
        <Table data-testid="volumes">
          <Table.Thead>
            <Table.Tr><Table.Th>Name</Table.Th><Table.Th>Kind</Table.Th><Table.Th>Used</Table.Th><Table.Th>Created</Table.Th><Table.Th /></Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {(volumes.data ?? []).map((v) => (
              <Table.Tr key={v.id} data-volume={v.name} bg={search.volume === v.name ? "blue.0" : undefined}>
                <Table.Td>
                  <Anchor component="button" type="button" onClick={() => setSearch({ workspace, volume: v.name, path: "/" })}>{v.name}</Anchor>
                  {v.reserved_bytes > 0 && <Text size="xs" c="dimmed">{formatBytes(v.reserved_bytes)} reserved by unfinished uploads</Text>}
                </Table.Td>
                <Table.Td><Badge variant="light">{v.kind}</Badge></Table.Td>
                <Table.Td><VolumeUsage volume={v} /></Table.Td>
                <Table.Td>{formatAgo(v.created_at)}{v.created_by ? ` by ${v.created_by}` : ""}</Table.Td>
                <Table.Td>
                  <Group gap={4} justify="end">
                    <Button size="compact-xs" variant="subtle" onClick={() => setRenaming(v)} aria-label={`Rename ${v.name}`}>Rename</Button>
                    <Button size="compact-xs" variant="subtle" color="red" loading={remove.isPending && remove.variables === v.name} onClick={() => { if (window.confirm(`Delete volume ${v.name} and all its files?`)) remove.mutate(v.name); }} aria-label={`Delete ${v.name}`}>Delete</Button>
                  </Group>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </QueryState>
      {workspace && search.volume && (
        <VolumeBrowser key={`${workspace}/${search.volume}`} workspace={workspace} volume={search.volume} path={search.path ?? "/"} onPath={(p) => setSearch({ workspace, volume: search.volume, path: p })} />
      )}
      <Modal opened={renaming !== null} onClose={() => setRenaming(null)} title={`Rename ${renaming?.name ?? ""}`}>
        {renaming && (
          <RenameVolume
            workspace={workspace}
            volume={renaming}
            onClose={(renamed) => {
              if (renamed && search.volume === renaming.name) setSearch({ workspace, volume: renamed, path: search.path });
              setRenaming(null);
            }}
          />
        )}
      </Modal>
    </Stack>
  );
}
