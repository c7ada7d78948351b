import { cleanup, fireEvent, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Delivery, Reclaim } from "../api/alerts";
import { DeliveriesTable } from "../pages/Alerts";
import { renderWithTheme } from "../test/render";
import { AlertBellView } from "./AlertBell";
import { ReclaimBannerView } from "./ReclaimBanner";

vi.mock("@tanstack/react-router", () => ({ Link: (props: object) => <a {...props} /> }));
afterEach(cleanup);

const reclaim: Reclaim = {
  workload_id: "wl1",
  warned_at: "2026-12-01T10:45:00Z",
  stop_at: "2026-12-01T11:00:00Z",
  latest_stop_at: "2026-12-01T15:00:00Z",
  can_postpone: true,
  kept_by: null,
  kept_at: null,
};

describe("AlertBellView", () => {
  it("names the count of open alerts", () => {
    renderWithTheme(<AlertBellView count={3} />);
    expect(screen.getByLabelText("3 open alerts")).toBeTruthy();
    expect(screen.getByText("3")).toBeTruthy();
  });
  it("shows no number when nothing is open", () => {
    renderWithTheme(<AlertBellView count={0} />);
    expect(screen.getByLabelText("0 open alerts")).toBeTruthy();
    expect(screen.queryByText("0")).toBeNull();
  });
});

describe("ReclaimBannerView", () => {
  it("offers one click to keep an idle workload running", () => {
    const onKeep = vi.fn();
    renderWithTheme(<ReclaimBannerView reclaim={reclaim} mayKeep onKeep={onKeep} keeping={false} />);
    expect(screen.getByTestId("reclaim-banner").textContent).toContain("will be stopped");
    fireEvent.click(screen.getByRole("button", { name: "Keep running" }));
    expect(onKeep).toHaveBeenCalledOnce();
  });
  it("says when the hard cap is reached, and who kept it", () => {
    const capped = { ...reclaim, can_postpone: false, kept_by: "kim", kept_at: "2026-12-01T10:50:00Z" };
    renderWithTheme(<ReclaimBannerView reclaim={capped} mayKeep onKeep={() => {}} keeping={false} />);
    expect(screen.queryByRole("button", { name: "Keep running" })).toBeNull();
    expect(screen.getByTestId("reclaim-banner").textContent).toContain("Kept running by kim");
    expect(screen.getByTestId("reclaim-banner").textContent).toContain("as long as the policy allows");
  });
  it("offers no button to those who may not keep it", () => {
    renderWithTheme(<ReclaimBannerView reclaim={reclaim} mayKeep={false} onKeep={() => {}} keeping={false} />);
    expect(screen.queryByRole("button", { name: "Keep running" })).toBeNull();
  });
});

describe("DeliveriesTable", () => {
  it("shows each attempt's status and last error", () => {
    const delivery: Delivery = {
      id: 7, alert_id: 3, rule: "job-failed", channel: "ops", event: "fired", status: "pending", attempts: 2,
      next_attempt_at: "2026-12-01T10:00:40Z", last_error: "HTTP 500: down", created_at: "2026-12-01T10:00:00Z", delivered_at: null,
    };
    renderWithTheme(<DeliveriesTable deliveries={[delivery]} />);
    expect(screen.getByText("HTTP 500: down")).toBeTruthy();
    expect(screen.getByText("pending")).toBeTruthy();
    expect(screen.getByText(/next try/)).toBeTruthy();
  });
});

