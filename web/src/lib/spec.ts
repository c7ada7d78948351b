// The submit form's model is the request body itself (`WorkloadSubmit`), which is also the CLI's spec
// file (`astrago run -f spec.yaml`): the YAML view shows and edits exactly what is sent.
import { parse, stringify } from "yaml";

import type { WorkloadSubmit } from "../api/client";

export type Spec = WorkloadSubmit;

export function emptySpec(workspace: string): Spec {
  return { workspace, kind: "job", command: [], resources: { gpus: 1, cpu: 1, memory: "4Gi" } };
}

/** The spec without empty values, so the YAML is what a person would write. */
export function compact(spec: Spec): Spec {
  const drop = (value: unknown) =>
    value === undefined || value === null || value === "" || (Array.isArray(value) && value.length === 0) ||
    (typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).length === 0);
  const clean = (obj: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(
      Object.entries(obj)
        .map(([k, v]) => [k, v && typeof v === "object" && !Array.isArray(v) ? clean(v as Record<string, unknown>) : v] as const)
        .filter(([, v]) => !drop(v)),
    );
  return clean(spec as unknown as Record<string, unknown>) as unknown as Spec;
}

export function toYaml(spec: Spec): string {
  return stringify(compact(spec));
}

/** The spec a YAML text holds, or an error that says where it is wrong. */
export function fromYaml(text: string): { spec: Spec } | { error: string } {
  try {
    const value: unknown = parse(text);
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      return { error: "the spec must be a mapping (workspace:, command:, resources: …)" };
    }
    return { spec: value as Spec };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/** A command line as argv: whitespace-separated, with '…' and "…" quoting (like a shell, no expansion). */
export function splitCommand(line: string): string[] {
  const argv: string[] = [];
  let current = "";
  let quote: string | null = null;
  let started = false;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else current += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      started = true;
    } else if (/\s/.test(ch)) {
      if (started || current) argv.push(current);
      current = "";
      started = false;
    } else {
      current += ch;
    }
  }
  if (started || current) argv.push(current);
  return argv;
}

export function joinCommand(argv: string[] | string | undefined): string {
  if (argv === undefined) return "";
  if (typeof argv === "string") return argv;
  return argv.map((a) => (a === "" || /[\s'"]/.test(a) ? (a.includes("'") ? `"${a}"` : `'${a}'`) : a)).join(" ");
}
