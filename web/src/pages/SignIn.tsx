import { Alert, Button, Center, Divider, Paper, PasswordInput, Stack, Text, TextInput, Title } from "@mantine/core";
import { useNavigate, useSearch } from "@tanstack/react-router";
import { useState, type FormEvent } from "react";

import { ApiError, api, unwrap } from "../api/client";
import { startSession, takeSignInNotice } from "../auth/session";

export function SignInPage() {
  const navigate = useNavigate();
  const search = useSearch({ from: "/sign-in" });
  const [notice] = useState(takeSignInNotice);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const token = await unwrap(api.POST("/api/v1/auth/login", { body: { username, password } }));
      startSession({ token: token.token ?? "", username: token.username, expiresAt: token.expires_at ?? null });
      const next = search.next && search.next.startsWith("/") && !search.next.startsWith("/sign-in") ? search.next : "/";
      await navigate({ to: next });
    } catch (e) {
      setError(e instanceof ApiError ? e.detail || e.title : String(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Center mih="100vh" bg="gray.0">
      <Paper withBorder shadow="sm" p="xl" w={380}>
        <form onSubmit={submit} aria-label="Sign in">
          <Stack>
            <Title order={2}>Sign in to AstraGo</Title>
            {notice && (
              <Alert color="yellow" role="status">
                {notice}
              </Alert>
            )}
            <TextInput label="Username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.currentTarget.value)} autoFocus />
            <PasswordInput label="Password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.currentTarget.value)} />
            {error && (
              <Alert color="red" role="alert">
                {error}
              </Alert>
            )}
            <Button type="submit" loading={busy}>
              Sign in
            </Button>
            {/* Single sign-on providers add their buttons below this divider. */}
            <Divider label="local account" labelPosition="center" />
            <Text size="xs" c="dimmed">
              Accounts are created by a platform admin (Users page or `astrago user create`).
            </Text>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
