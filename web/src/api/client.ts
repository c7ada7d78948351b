// The typed API client. `schema.d.ts` is generated from the server's OpenAPI document on every build
// (`make web`), so a changed or removed field breaks `tsc`, not the user.
import createClient, { type Middleware } from "openapi-fetch";

import { authHeaders, expireSession } from "../auth/session";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Workload = Schemas["WorkloadOut"];
export type WorkloadPage = Schemas["WorkloadPageOut"];
export type WorkloadSubmit = Schemas["WorkloadSubmit"];
export type WorkloadStatus = Workload["status"];
export type WorkloadKind = Workload["kind"];
export type NodeInfo = Schemas["NodeOut"];
export type Me = Schemas["UserOut"];
export type WorkspaceInfo = Schemas["WorkspaceOut"];
export type Quota = Schemas["QuotaOut"];
export type QuotaSet = Schemas["QuotaSet"];
export type Token = Schemas["TokenOut"];
export type AuditRecord = Schemas["AuditOut"];
export type WorkloadEvent = Schemas["EventOut"];
export type WorkspaceRole = Schemas["WorkspaceRole"];
export type WorkloadGpuUsage = Schemas["WorkloadGpuUsage"];
export type NodeGpuUsage = Schemas["NodeGpuUsage"];
export type GpuUsagePoint = Schemas["GpuUsagePoint"];

/** An RFC 9457 problem the server answered with; `errors` lists "field: message" for invalid input. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly errors: string[] = [],
  ) {
    super(detail || title);
  }

  /** Field path ("resources.gpus") -> message, for showing validation errors next to inputs. Each
   * message starts with the path of the field it is about ("name must match…", "resources.gpus: …"). */
  fieldErrors(): Record<string, string> {
    const byField: Record<string, string> = {};
    for (const error of this.errors) {
      const match = /^([A-Za-z_][\w]*(?:\.[\w]+)*):?\s/.exec(error);
      if (match?.[1] && match[1] !== "the") byField[match[1]] = error;
    }
    return byField;
  }

  /** True when every error is about one of `fields` (so showing them at their fields shows them all). */
  allAbout(fields: readonly string[]): boolean {
    const byField = this.fieldErrors();
    const shown = new Set(fields.filter((f) => f in byField).map((f) => byField[f]));
    return this.errors.length > 0 && this.errors.every((e) => shown.has(e));
  }
}

const authenticate: Middleware = {
  onRequest({ request }) {
    for (const [name, value] of Object.entries(authHeaders())) request.headers.set(name, value);
    return request;
  },
  async onResponse({ response, request }) {
    if (response.status === 401 && !request.url.endsWith("/auth/login")) {
      const detail = await problemOf(response.clone());
      expireSession(detail.detail || "Your session has ended. Sign in again.");
    }
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin });
api.use(authenticate);

export async function problemOf(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as { title?: string; detail?: string; errors?: string[] };
    return new ApiError(response.status, body.title ?? response.statusText, body.detail ?? "", body.errors ?? []);
  } catch {
    return new ApiError(response.status, response.statusText, `the server answered ${response.status}`);
  }
}

/** The data of a call, or an ApiError carrying the server's problem. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result;
  try {
    result = await call;
  } catch (error) {
    throw new ApiError(0, "Network error", "cannot reach the server; is it running?");
  }
  if (!result.response.ok) {
    const body = (result.error ?? {}) as { title?: string; detail?: string; errors?: string[] };
    throw new ApiError(result.response.status, body.title ?? "Error", body.detail ?? "", body.errors ?? []);
  }
  return result.data as T;
}
