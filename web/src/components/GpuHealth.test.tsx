import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import type { Schemas } from "../api/client";
import { renderWithTheme } from "../test/render";
import { cordonText, DeviceHealth } from "./GpuHealth";

function device(overrides: Partial<Schemas["DeviceOut"]>): Schemas["DeviceOut"] {
  return {
    index: 2,
    uuid: null,
    model: "A100-80GB",
    memory_mib: 81920,
    simulated: true,
    healthy: true,
    allocated_milli: 0,
    ...overrides,
  } as Schemas["DeviceOut"];
}

describe("DeviceHealth", () => {
  it("shows a fenced GPU with its cause", () => {
    renderWithTheme(
      <DeviceHealth device={device({ health: { state: "unhealthy", cause: "XID 79 (GPU fallen off the bus)", sticky: true } })} />,
    );
    expect(screen.getByText("unhealthy").closest("[data-health]")?.getAttribute("data-health")).toBe("unhealthy");
    expect(screen.getByText("fenced: XID 79 (GPU fallen off the bus)")).toBeTruthy();
  });
  it("shows a cordon and its reason on a healthy GPU", () => {
    const cordon = { reason: "fan noise", cordoned_by: "admin", cordoned_at: "2026-12-02T01:00:00Z" };
    renderWithTheme(<DeviceHealth device={device({ cordon })} />);
    expect(screen.getByText("healthy")).toBeTruthy();
    expect(screen.getByText("cordoned")).toBeTruthy();
    expect(screen.getByText("cordoned by admin: fan noise")).toBeTruthy();
  });
  it("calls a GPU that stopped answering the driver unhealthy", () => {
    renderWithTheme(<DeviceHealth device={device({ healthy: false })} />);
    expect(screen.getByText("fenced: not answering the driver")).toBeTruthy();
  });
});

describe("cordonText", () => {
  it("leaves out what is not known", () => {
    expect(cordonText({ reason: null, cordoned_by: null, cordoned_at: "2026-12-02T01:00:00Z" })).toBe("cordoned");
  });
});
