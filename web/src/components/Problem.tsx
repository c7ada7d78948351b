import { Alert, Center, Loader, Text } from "@mantine/core";
import type { ReactNode } from "react";

import { ApiError } from "../api/client";

/** An error as a person reads it; a 403 says what role the action needs (the server's detail names it). */
export function ProblemAlert({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const problem = error instanceof ApiError ? error : new ApiError(0, "Error", String(error));
  const heading =
    problem.status === 403 ? "You are not allowed to do this" : problem.status === 0 ? "Cannot reach the server" : (title ?? problem.title);
  return (
    <Alert color={problem.status === 403 ? "orange" : "red"} title={heading} role="alert" my="sm">
      {problem.detail || problem.title}
      {problem.status === 403 && (
        <Text size="sm" mt={4}>
          Ask a workspace manager or a platform admin for the role named above.
        </Text>
      )}
    </Alert>
  );
}

/** Loading, error and empty states around a query's content. */
export function QueryState({
  query,
  empty,
  children,
}: {
  query: { isPending: boolean; error: unknown; data?: unknown };
  empty?: ReactNode;
  children: ReactNode;
}) {
  if (query.isPending) {
    return (
      <Center py="xl" aria-busy="true">
        <Loader size="sm" aria-label="Loading" />
      </Center>
    );
  }
  if (query.error) return <ProblemAlert error={query.error} />;
  if (empty && Array.isArray(query.data) && query.data.length === 0) {
    return (
      <Text c="dimmed" py="md">
        {empty}
      </Text>
    );
  }
  return <>{children}</>;
}
