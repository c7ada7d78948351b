// The one place that knows how the console authenticates. Today: the bearer token from
// POST /api/v1/auth/login, kept in localStorage so a reload (or a new tab) stays signed in.
// Switching to cookie sessions means changing this module only: `authHeaders()` would return {}.
import { useSyncExternalStore } from "react";

export interface Session {
  token: string;
  username: string;
  expiresAt: string | null;
}

const KEY = "astrago.session";
const NOTICE_KEY = "astrago.signin-notice";
const listeners = new Set<() => void>();

function read(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

let current: Session | null = read();

function emit(): void {
  for (const listener of listeners) listener();
}

window.addEventListener("storage", (event) => {
  if (event.key === KEY) {
    current = read();
    emit();
  }
});

export function getSession(): Session | null {
  if (current?.expiresAt && Date.parse(current.expiresAt) <= Date.now()) {
    expireSession("Your session has expired. Sign in again.");
  }
  return current;
}

export function startSession(session: Session): void {
  current = session;
  localStorage.setItem(KEY, JSON.stringify(session));
  sessionStorage.removeItem(NOTICE_KEY);
  emit();
}

export function endSession(): void {
  current = null;
  localStorage.removeItem(KEY);
  emit();
}

/** The server refused the token (expired or revoked): back to sign-in, with the reason shown there. */
export function expireSession(notice: string): void {
  if (current === null) return;
  sessionStorage.setItem(NOTICE_KEY, notice);
  endSession();
}

export function takeSignInNotice(): string | null {
  return sessionStorage.getItem(NOTICE_KEY);
}

export function authHeaders(): Record<string, string> {
  const session = getSession();
  return session ? { Authorization: `Bearer ${session.token}` } : {};
}

/** The subprotocols a WebSocket to the API offers (a browser cannot set its headers): the token rides in
 * one, base64url, never in the URL; the server answers with the application protocol. With a session
 * cookie instead, the cookie travels by itself and the server checks the page's Origin. */
export function socketProtocols(application: string): string[] {
  const session = getSession();
  if (!session) return [application];
  const encoded = btoa(String.fromCharCode(...new TextEncoder().encode(session.token)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
  return [application, `astrago.bearer.${encoded}`];
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useSession(): Session | null {
  return useSyncExternalStore(subscribe, () => current);
}
