import { QueryClient } from "@tanstack/react-query";
import { describe, expect, it } from "vitest";

import { keys } from "../api/queries";
import { page, workload } from "../test/fixtures";
import { applyEvent } from "./events";

describe("live events", () => {
  it("update the workload everywhere it is shown", () => {
    const client = new QueryClient();
    const w = workload();
    client.setQueryData(keys.workload(w.id), w);
    client.setQueryData(keys.workloadList({}), { pages: [page([w])], pageParams: [undefined] });
    const running = { ...w, status: "RUNNING", placements: [] };
    applyEvent(client, { event: "workload", data: JSON.stringify(running) });
    expect(client.getQueryData<typeof w>(keys.workload(w.id))?.status).toBe("RUNNING");
    const list = client.getQueryData<{ pages: { items: (typeof w)[] }[] }>(keys.workloadList({}));
    expect(list?.pages[0]?.items[0]?.status).toBe("RUNNING");
  });
  it("replace a node's GPUs", () => {
    const client = new QueryClient();
    client.setQueryData(keys.nodes, [{ name: "n1", devices: [] }, { name: "n2", devices: [] }]);
    applyEvent(client, { event: "node", data: JSON.stringify({ name: "n2", devices: [{ index: 0 }] }) });
    expect(client.getQueryData<{ name: string; devices: unknown[] }[]>(keys.nodes)?.map((n) => n.devices.length)).toEqual([0, 1]);
  });
});
