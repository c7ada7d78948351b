import { fireEvent, screen, within } from "@testing-library/react";
import { Table } from "@mantine/core";
import { describe, expect, it, vi } from "vitest";

import { renderWithTheme } from "../test/render";
import { UploadRow, VolumeUsage } from "./Volumes";

const volume = {
  id: "v1", workspace: "vision", name: "ds", slug: "ds", env_var: "ASTRAGO_VOLUME_DS", kind: "dataset" as const,
  size_limit: 10 * 1024 ** 3, description: "", used_bytes: 9.5 * 1024 ** 3, used_files: 1200, reserved_bytes: 0,
  created_by: "alice", created_at: "2026-12-01T10:00:00Z", mounted_by: [], uploads: [],
};

describe("VolumeUsage", () => {
  it("shows bytes and files against the volume's size, red when nearly full", () => {
    renderWithTheme(<VolumeUsage volume={volume} />);
    expect(screen.getByText("9.5 GiB in 1200 files of 10.0 GiB")).toBeTruthy();
    const bar = screen.getByLabelText("ds: 9.5 GiB of 10.0 GiB");
    expect(bar.closest("[style]")?.getAttribute("style") ?? bar.outerHTML).toContain("red");
  });
  it("says when a volume has no size of its own", () => {
    renderWithTheme(<VolumeUsage volume={{ ...volume, size_limit: null, used_files: 1, used_bytes: 10 }} />);
    expect(screen.getByText("10 B in 1 file (no size of its own)")).toBeTruthy();
  });
});

describe("UploadRow", () => {
  const item = { key: "k", path: "/train/a.bin", size: 20 * 1024 ** 2, sent: 18 * 1024 ** 2, resumedFrom: 16 * 1024 ** 2, status: "uploading" as const };
  it("shows progress, where it resumed, and cancels", () => {
    const cancel = vi.fn();
    renderWithTheme(<Table><Table.Tbody><UploadRow item={item} onCancel={cancel} /></Table.Tbody></Table>);
    expect(screen.getByTestId("upload-progress").textContent).toBe("90% · 18.0 MiB of 20.0 MiB (resumed at 16.0 MiB)");
    fireEvent.click(screen.getByRole("button", { name: "Cancel /train/a.bin" }));
    expect(cancel).toHaveBeenCalledOnce();
  });
  it("shows the server's reason when it failed, and no cancel button", () => {
    const { container } = renderWithTheme(<Table><Table.Tbody><UploadRow item={{ ...item, status: "failed", error: "volume 'ds' is full" }} onCancel={() => undefined} /></Table.Tbody></Table>);
    expect(within(container).getByText("volume 'ds' is full")).toBeTruthy();
    expect(within(container).queryByRole("button")).toBeNull();
  });
});
