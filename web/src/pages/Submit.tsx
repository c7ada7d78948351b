import {
  Alert, Button, Checkbox, Group, NumberInput, SegmentedControl, Select, SimpleGrid, Stack, Tabs, Text, TextInput, Textarea, Title,
} from "@mantine/core";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "@tanstack/react-router";
import { useEffect, useMemo, useState, type FormEvent } from "react";

import { ApiError, api, unwrap } from "../api/client";
import { keys, useWorkspaces } from "../api/queries";
import { emptySpec, fromYaml, joinCommand, splitCommand, toYaml, type Spec } from "../lib/spec";

type GpuMode = "none" | "whole" | "mig" | "share";

// The request fields this form has an input for: their errors show there, every other one above the button.
const FORM_FIELDS = [
  "workspace", "name", "kind", "command", "image", "working_dir", "resources.gpus", "resources.mig", "resources.gpu_share",
  "resources.gpu_model", "resources.cpu", "resources.memory", "replicas", "priority", "max_runtime", "env",
] as const;

function gpuMode(spec: Spec): GpuMode {
  const r = spec.resources ?? {};
  if (r.mig) return "mig";
  if (r.gpu_share) return "share";
  return r.gpus ? "whole" : "none";
}

function envText(env: Record<string, string> | undefined): string {
  return Object.entries(env ?? {}).map(([k, v]) => `${k}=${v}`).join("\n");
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf("=");
    if (line.trim() && at > 0) env[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  return env;
}

export function SubmitPage() {
  const navigate = useNavigate();
  const client = useQueryClient();
  const workspaces = useWorkspaces();
  const mine = useMemo(() => (workspaces.data ?? []).filter((w) => w.my_role && w.my_role !== "viewer"), [workspaces.data]);
  const [spec, setSpec] = useState<Spec>(emptySpec(""));
  const [commandLine, setCommandLine] = useState("");
  const [env, setEnv] = useState("");
  const [tab, setTab] = useState<string | null>("form");
  const [yamlText, setYamlText] = useState("");
  const [yamlError, setYamlError] = useState<string | null>(null);

  useEffect(() => {
    if (!spec.workspace && mine[0]) setSpec((s) => ({ ...s, workspace: mine[0]!.name }));
  }, [mine, spec.workspace]);

  const submit = useMutation({
    mutationFn: (body: Spec) => unwrap(api.POST("/api/v1/workloads", { body })),
    onSuccess: (workload) => {
      client.setQueryData(keys.workload(workload.id), workload); // shown at once, then kept live
      void navigate({ to: "/workloads/$workloadId", params: { workloadId: workload.id } });
    },
  });
  const problem = submit.error instanceof ApiError ? submit.error : null;
  const fieldErrors = problem?.fieldErrors() ?? {};
  const err = (field: string) => fieldErrors[field];
  const shownAtFields = new Set(FORM_FIELDS.filter((f) => f in fieldErrors).map((f) => fieldErrors[f]));
  const otherErrors = problem ? problem.errors.filter((e) => !shownAtFields.has(e)) : [];

  const r = spec.resources ?? {};
  const setResources = (patch: Partial<NonNullable<Spec["resources"]>>) => setSpec((s) => ({ ...s, resources: { ...s.resources, ...patch } }));
  const mode = gpuMode(spec);
  const setMode = (next: string) => {
    const m = next as GpuMode;
    setResources({ gpus: m === "whole" ? Math.max(r.gpus ?? 0, 1) : 0, mig: m === "mig" ? (r.mig ?? "1g.10gb") : null, gpu_share: m === "share" ? (r.gpu_share ?? 0.5) : null });
  };

  function fromForm(): Spec {
    return { ...spec, command: splitCommand(commandLine), env: parseEnv(env) };
  }

  function switchTab(next: string | null) {
    if (next === "yaml") {
      setYamlText(toYaml(fromForm()));
      setYamlError(null);
    } else if (next === "form") {
      const parsed = fromYaml(yamlText);
      if ("error" in parsed) {
        setYamlError(parsed.error);
        return;
      }
      setSpec(parsed.spec);
      setCommandLine(joinCommand(parsed.spec.command));
      setEnv(envText(parsed.spec.env));
    }
    setTab(next);
  }

  function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (tab === "yaml") {
      const parsed = fromYaml(yamlText);
      if ("error" in parsed) return setYamlError(parsed.error);
      submit.mutate(parsed.spec);
    } else {
      submit.mutate(fromForm());
    }
  }

  return (
    <form onSubmit={onSubmit} aria-label="Submit a workload">
      <Stack maw={900}>
        <Title order={2}>Submit a workload</Title>
        {workspaces.data && mine.length === 0 && (
          <Alert color="orange">You are not a member of any workspace: ask a workspace manager to add you (role member or above).</Alert>
        )}
        <Tabs value={tab} onChange={switchTab}>
          <Tabs.List>
            <Tabs.Tab value="form">Form</Tabs.Tab>
            <Tabs.Tab value="yaml">YAML (same as `astrago run -f`)</Tabs.Tab>
          </Tabs.List>
          <Tabs.Panel value="form" pt="md">
            <Stack>
              <SimpleGrid cols={{ base: 1, sm: 3 }}>
                <Select label="Workspace" required data={mine.map((w) => w.name)} value={spec.workspace || null} onChange={(v) => setSpec({ ...spec, workspace: v ?? "" })} error={err("workspace")} />
                <TextInput label="Name" placeholder="optional, e.g. train-resnet" value={spec.name ?? ""} onChange={(e) => setSpec({ ...spec, name: e.currentTarget.value || null })} error={err("name")} />
                <Select label="Kind" data={["job", "distributed", "interactive", "service"]} value={spec.kind ?? "job"} onChange={(v) => setSpec({ ...spec, kind: (v ?? "job") as Spec["kind"] })} error={err("kind")} />
              </SimpleGrid>
              <TextInput label="Command" description="as on a shell line; quotes group words" placeholder="python train.py --epochs 10" value={commandLine} onChange={(e) => setCommandLine(e.currentTarget.value)} error={err("command")} />
              <SimpleGrid cols={{ base: 1, sm: 2 }}>
                <TextInput label="Image" description="needed for interactive and service workloads (Kubernetes)" value={spec.image ?? ""} onChange={(e) => setSpec({ ...spec, image: e.currentTarget.value || null })} error={err("image")} />
                <TextInput label="Working directory" value={spec.working_dir ?? ""} onChange={(e) => setSpec({ ...spec, working_dir: e.currentTarget.value || null })} error={err("working_dir")} />
              </SimpleGrid>
              <div>
                <Text size="sm" fw={500} id="gpu-mode-label">GPUs per replica</Text>
                <SegmentedControl aria-labelledby="gpu-mode-label" value={mode} onChange={setMode} data={[{ value: "none", label: "None" }, { value: "whole", label: "Whole GPUs" }, { value: "mig", label: "MIG slice" }, { value: "share", label: "Share" }]} />
              </div>
              <SimpleGrid cols={{ base: 1, sm: 3 }}>
                {mode === "whole" && <NumberInput label="GPUs" min={1} value={r.gpus ?? 1} onChange={(v) => setResources({ gpus: Number(v) || 0 })} error={err("resources.gpus")} />}
                {mode === "mig" && <TextInput label="MIG profile" placeholder="1g.10gb" value={r.mig ?? ""} onChange={(e) => setResources({ mig: e.currentTarget.value || null })} error={err("resources.mig")} />}
                {mode === "share" && <NumberInput label="GPU share" description="a fraction of one GPU" min={0.05} max={0.95} step={0.05} decimalScale={2} value={r.gpu_share ?? 0.5} onChange={(v) => setResources({ gpu_share: Number(v) || null })} error={err("resources.gpu_share")} />}
                {mode !== "none" && <TextInput label="GPU model" placeholder="any, e.g. A100-80GB" value={r.gpu_model ?? ""} onChange={(e) => setResources({ gpu_model: e.currentTarget.value || null })} error={err("resources.gpu_model")} />}
              </SimpleGrid>
              <SimpleGrid cols={{ base: 2, sm: 4 }}>
                <TextInput label="CPU (cores)" description="2, 0.5 or 500m" value={String(r.cpu ?? "1")} onChange={(e) => setResources({ cpu: e.currentTarget.value })} error={err("resources.cpu")} />
                <TextInput label="Memory" description="512Mi, 16Gi" value={String(r.memory ?? "1Gi")} onChange={(e) => setResources({ memory: e.currentTarget.value })} error={err("resources.memory")} />
                <NumberInput label="Replicas" min={1} value={spec.replicas ?? 1} onChange={(v) => setSpec({ ...spec, replicas: Number(v) || 1 })} error={err("replicas")} />
                <TextInput label="Priority" description="-1000..1000 or low|normal|high|urgent" value={String(spec.priority ?? 0)} onChange={(e) => setSpec({ ...spec, priority: e.currentTarget.value })} error={err("priority")} />
              </SimpleGrid>
              <SimpleGrid cols={{ base: 1, sm: 2 }}>
                <TextInput label="Max runtime" description="seconds or 90m, 2h, 1d" value={spec.max_runtime == null ? "" : String(spec.max_runtime)} onChange={(e) => setSpec({ ...spec, max_runtime: e.currentTarget.value || null })} error={err("max_runtime")} />
                <Checkbox mt="lg" label="May be preempted for guaranteed quota" checked={spec.preemptible ?? true} onChange={(e) => setSpec({ ...spec, preemptible: e.currentTarget.checked })} />
              </SimpleGrid>
              <Textarea label="Environment" description="one NAME=value per line" autosize minRows={2} value={env} onChange={(e) => setEnv(e.currentTarget.value)} error={err("env")} />
            </Stack>
          </Tabs.Panel>
          <Tabs.Panel value="yaml" pt="md">
            <Textarea aria-label="Spec as YAML" autosize minRows={14} styles={{ input: { fontFamily: "monospace" } }} value={yamlText} onChange={(e) => setYamlText(e.currentTarget.value)} error={yamlError} />
          </Tabs.Panel>
        </Tabs>
        {problem && (
          <Alert color={problem.status === 403 ? "orange" : "red"} title={problem.status === 403 ? "Not allowed" : "The server refused this workload"} role="alert">
            {otherErrors.length ? otherErrors.join("; ") : problem.detail}
          </Alert>
        )}
        <Group>
          <Button type="submit" loading={submit.isPending}>Submit</Button>
        </Group>
      </Stack>
    </form>
  );
}
