import { Alert, AppShell, Badge, Burger, Group, Loader, Menu, NavLink, Text, Title, UnstyledButton } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { useQueryClient } from "@tanstack/react-query";
import { Link, Outlet, useNavigate, useRouterState } from "@tanstack/react-router";
import { useEffect } from "react";

import type { Me } from "../api/client";
import { useMe } from "../api/queries";
import { useSession } from "../auth/session";
import { signOut } from "../auth/signout";
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
  }, [session]); // eslint-disable-line react-hooks/exhaustive-deps

  async function onSignOut() {
    const logoutUrl = await signOut();
    // An SSO session: end it at the IdP too, which sends the browser back to the console.
    if (logoutUrl) window.location.assign(logoutUrl);
  }

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
            <UserMenu me={me.data} username={me.data?.username ?? session.username} onSignOut={() => void onSignOut()} />
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

/** Who is signed in and with which roles: the platform role and each workspace's role. */
function UserMenu({ me, username, onSignOut }: { me: Me | undefined; username: string; onSignOut: () => void }) {
  const workspaces = Object.entries(me?.workspaces ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return (
    <Menu position="bottom-end" width={260} withinPortal>
      <Menu.Target>
        <UnstyledButton fz="sm" aria-label="Account">
          <Group gap={6}>
            <Text size="sm" span aria-label="Signed in as">
              {username}
            </Text>
            {me?.admin && <Badge size="sm" variant="light">admin</Badge>}
          </Group>
        </UnstyledButton>
      </Menu.Target>
      <Menu.Dropdown aria-label="Your roles">
        <Menu.Label>
          {username} · {me?.source === "oidc" ? "single sign-on" : "local account"}
        </Menu.Label>
        <Text size="sm" px="sm" pb={4} data-testid="platform-role">
          {me?.admin ? "Platform admin" : "No platform role"}
        </Text>
        <Menu.Label>Workspace roles</Menu.Label>
        {workspaces.length === 0 && (
          <Text size="sm" px="sm" c="dimmed">
            none
          </Text>
        )}
        {workspaces.map(([workspace, role]) => (
          <Group key={workspace} px="sm" py={2} justify="space-between" data-workspace-role={workspace}>
            <Text size="sm">{workspace}</Text>
            <Badge size="sm" variant="outline">
              {role}
            </Badge>
          </Group>
        ))}
        <Menu.Divider />
        <Menu.Item component={Link} to="/tokens">
          API tokens and sessions
        </Menu.Item>
        <Menu.Item color="red" onClick={onSignOut}>
          Sign out
        </Menu.Item>
      </Menu.Dropdown>
    </Menu>
  );
}
