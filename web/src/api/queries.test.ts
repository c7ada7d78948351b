import { describe, expect, it } from "vitest";

import { page, workload } from "../test/fixtures";
import { foldWorkload, matchesFilters } from "./queries";

const data = (items = [workload(), workload()]) => ({ pages: [page(items)], pageParams: [undefined] });

describe("folding a live workload into a loaded list", () => {
  it("replaces a known workload in place", () => {
    const list = data();
    const running = { ...list.pages[0]!.items[1]!, status: "RUNNING" as const };
    const folded = foldWorkload(list, running, {})!;
    expect(folded.pages[0]!.items.map((w) => w.status)).toEqual(["PENDING", "RUNNING"]);
    expect(folded.pages[0]!.total).toBe(2);
  });
  it("puts a new workload that matches the filters on top and counts it", () => {
    const fresh = workload({ workspace: "team-a" });
    const folded = foldWorkload(data(), fresh, { workspace: "team-a" })!;
    expect(folded.pages[0]!.items[0]!.id).toBe(fresh.id);
    expect(folded.pages[0]!.total).toBe(3);
  });
  it("leaves out a new workload the list's filters exclude", () => {
    const list = data();
    expect(foldWorkload(list, workload({ workspace: "team-b" }), { workspace: "team-a" })).toBe(list);
    expect(foldWorkload(list, workload({ status: "FAILED" }), { states: ["RUNNING"] })).toBe(list);
  });
});

describe("filters", () => {
  it("match workspace, state, kind and owner", () => {
    const w = workload({ workspace: "x", status: "RUNNING", kind: "job", created_by: "bob" });
    expect(matchesFilters(w, { workspace: "x", states: ["RUNNING"], kind: "job", owner: "bob" })).toBe(true);
    expect(matchesFilters(w, { owner: "alice" })).toBe(false);
    expect(matchesFilters(w, { kind: "service" })).toBe(false);
  });
});
