import { Alert, Button, Center, Divider, Paper, PasswordInput, Stack, Text, TextInput, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
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
  // Public: whether the server has single sign-on configured (ASTRAGO_OIDC_ISSUER).
  const sso = useQuery({ queryKey: ["sso-config"], queryFn: () => unwrap(api.GET("/api/v1/auth/oidc/config")), retry: false });
  const next = search.next && search.next.startsWith("/") && !search.next.startsWith("//") && !search.next.startsWith("/sign-in") ? search.next : "/";

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const token = await unwrap(api.POST("/api/v1/auth/login", { body: { username, password } }));
      startSession({ token: token.token ?? "", username: token.username, expiresAt: token.expires_at ?? null });
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
            {search.sso_error && (
              <Alert color="red" role="alert" title="Single sign-on failed">
                {search.sso_error}
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
            <Text size="xs" c="dimmed">
              Local accounts are created by a platform admin (Users page or `astrago user create`).
            </Text>
            {sso.data?.enabled && (
              <>
                <Divider label="or" labelPosition="center" />
                {/* A full navigation: the server redirects to the IdP (code + PKCE) and, once signed in
                    there, back to `next` with the session cookie set. */}
                <Button component="a" variant="default" href={`/api/v1/auth/oidc/login?next=${encodeURIComponent(next)}`}>
                  Sign in with SSO
                </Button>
              </>
            )}
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
