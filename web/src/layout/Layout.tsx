import { Alert, AppShell, Burger, Group, Loader, NavLink, Text, Title, UnstyledButton } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { useQueryClient } from "@tanstack/react-query";
import { Link, Outlet, useNavigate, useRouterState } from "@tanstack/react-router";
import { useEffect } from "react";

import { useMe } from "../api/queries";
import { endSession, useSession } from "../auth/session";
import { AlertBell } from "../components/AlertBell";
import { followLiveEvents, useLiveState } from "../live/events";
import { NAV } from "./nav";

export function Layout() {
  const session = useSession();
  const navigate = useNavigate();
  const client = useQueryClient();
  const me = useMe();
  const live = useLiveState();
  const [opened, { toggle }] = useDisclosure();
  const path = useRouterState({ select: (s) => s.location.pathname });

  useEffect(() => {
    if (!session) {
      client.clear();
      void navigate({ to: "/sign-in", search: { next: window.location.pathname + window.location.search } });
      return;
    }
    return followLiveEvents(client);
  }, [session?.token]); // eslint-disable-line react-hooks/exhaustive-deps

  if (!session) return null;
  const admin = me.data?.admin ?? false;
  return (
    <AppShell header={{ height: 52 }} navbar={{ width: 210, breakpoint: "sm", collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Group gap="xs">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
            <Title order={3} c="blue.7">AstraGo</Title>
          </Group>
          <Group gap="md">
            <AlertBell />
            <Text size="sm" aria-label="Signed in as">
              {session.username}
              {admin ? " (admin)" : ""}
            </Text>
            <UnstyledButton onClick={() => endSession()} fz="sm" c="blue.7">
              Sign out
            </UnstyledButton>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main">
        {NAV.filter((entry) => !entry.admin || admin).map((entry) => (
          <NavLink
            key={entry.to}
            component={Link}
            to={entry.to}
            label={entry.label}
            active={entry.to === "/" ? path === "/" : path.startsWith(entry.to)}
          />
        ))}
      </AppShell.Navbar>
      <AppShell.Main>
        {live === "reconnecting" && (
          <Alert color="yellow" mb="md" role="status" data-testid="reconnecting" icon={<Loader size="xs" />}>
            Connection to the server lost — reconnecting. What you see may be out of date.
          </Alert>
        )}
        <Outlet />
      </AppShell.Main>
    </AppShell>
  );
}
