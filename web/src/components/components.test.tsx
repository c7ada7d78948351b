import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { ApiError } from "../api/client";
import { fromLocalInput, parseAuditSearch, toLocalInput } from "../pages/Audit";
import { gpuGroups } from "../pages/Overview";
import { renderWithTheme } from "../test/render";
import { ProblemAlert } from "./Problem";
import { StatusBadge } from "./StatusBadge";
import { UsageBar } from "./UsageBar";

describe("StatusBadge", () => {
  it("names the state and exposes it for styling and tests", () => {
    renderWithTheme(<StatusBadge status="RUNNING" />);
    expect(screen.getByText("RUNNING").closest("[data-status]")?.getAttribute("data-status")).toBe("RUNNING");
  });
});

describe("ProblemAlert", () => {
  it("says an action is not allowed and which role the server asked for", () => {
    renderWithTheme(<ProblemAlert error={new ApiError(403, "Forbidden", "only a platform admin can set quotas")} />);
    expect(screen.getByRole("alert").textContent).toContain("You are not allowed to do this");
    expect(screen.getByRole("alert").textContent).toContain("only a platform admin can set quotas");
  });
  it("maps validation errors to fields", () => {
    const errors = ["resources.gpus must be at least 0, not -1", "name must match the pattern ^[a-z]+$, not 'X'", "workspace: unknown"];
    expect(new ApiError(422, "Invalid input", "", errors).fieldErrors()).toEqual({
      "resources.gpus": errors[0],
      name: errors[1],
      workspace: errors[2],
    });
  });
});

describe("UsageBar", () => {
  it("labels use against the limit with units", () => {
    renderWithTheme(<UsageBar label="gpu" used={3} guaranteed={2} limit={4} unit="GPUs" />);
    expect(screen.getByLabelText("gpu: 3 of 4 GPUs")).toBeTruthy();
    expect(screen.getByText(/3 used · 2 guaranteed · limit 4 GPUs/)).toBeTruthy();
  });
});

describe("Overview GPU groups", () => {
  it("count whole, shared and unhealthy GPUs per node and model", () => {
    const device = (allocated_milli: number, healthy = true) => ({ index: 0, uuid: null, model: "A100", memory_mib: 81920, simulated: true, healthy, allocated_milli, mig_enabled: !healthy, tenants: [], other_tenants: 0 });
    const node = { name: "n1", backend: "local", cpu_milli: 1, memory_mib: 1, schedulable: true, simulated: true, last_seen_at: "", allocated_cpu_milli: 0, allocated_memory_mib: 0 };
    const groups = gpuGroups([{ ...node, devices: [device(1000), device(500), device(0, false)] }]);
    expect(groups).toEqual([{ node: "n1", model: "A100", total: 3, usedMilli: 1500, shared: 1, mig: 1, unhealthy: 1 }]);
  });
});

describe("Audit filters in the URL", () => {
  it("keep the API's filters and drop unknown or malformed values", () => {
    const search = parseAuditSearch({ actor: " alice ", action: "workload", result: "denied", since: "2026-12-01T10:00:00+09:00", until: "not a time", page: "3", workspace: "" });
    expect(search).toEqual({ actor: "alice", action: "workload", result: "denied", since: "2026-12-01T01:00:00.000Z" });
    expect(parseAuditSearch({ result: "maybe" })).toEqual({});
  });
  it("show times in the viewer's zone and send them as UTC instants", () => {
    const iso = "2026-12-01T01:30:00.000Z";
    expect(fromLocalInput(toLocalInput(iso))).toBe(iso);
    expect(fromLocalInput("")).toBeUndefined();
    expect(toLocalInput(undefined)).toBe("");
  });
});
