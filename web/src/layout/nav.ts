// The navigation: one entry per page; `admin` entries are hidden from everyone else.
export interface NavEntry {
  to: string;
  label: string;
  admin?: boolean;
}

export const NAV: NavEntry[] = [
  { to: "/", label: "Overview" },
  { to: "/workloads", label: "Workloads" },
  { to: "/submit", label: "Submit" },
  { to: "/nodes", label: "Nodes & GPUs" },
  { to: "/workspaces", label: "Workspaces" },
  { to: "/volumes", label: "Volumes" },
  { to: "/alerts", label: "Alerts" },
  { to: "/usage", label: "Usage" },
  { to: "/tokens", label: "API tokens" },
  { to: "/users", label: "Users", admin: true },
  { to: "/audit", label: "Audit log", admin: true },
];
