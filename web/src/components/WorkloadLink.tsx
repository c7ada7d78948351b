import { Anchor } from "@mantine/core";
import { Link } from "@tanstack/react-router";
import type { ReactNode } from "react";

export function WorkloadLink({ id, children }: { id: string; children: ReactNode }) {
  return <Anchor renderRoot={(props) => <Link {...props} to="/workloads/$workloadId" params={{ workloadId: id }} />}>{children}</Anchor>;
}
