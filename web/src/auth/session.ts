// The one place that knows how the console authenticates. Two kinds of session:
// - "token": a password sign-in's bearer token from POST /api/v1/auth/login, kept in localStorage so a
//   reload (or a new tab) stays signed in;
// - "cookie": "Sign in with SSO". The server holds the session in an httpOnly cookie the script cannot
//   read; it also sets the readable `astrago_csrf` cookie, whose value every request echoes in
//   X-CSRF-Token (the server requires it on unsafe methods). That cookie is how the console knows it is
//   signed in after the IdP sends the browser back.
import { useSyncExternalStore } from "react";

export type SessionKind = "token" | "cookie";

export interface Session {
  kind: SessionKind;
  token: string | null; // the bearer token of a "token" session
  username: string; // "" for a cookie session until /auth/me answers
  expiresAt: string | null;
}

const KEY = "astrago.session";
const NOTICE_KEY = "astrago.signin-notice";
export const CSRF_COOKIE = "astrago_csrf";
const CSRF_HEADER = "X-CSRF-Token";
const listeners = new Set<() => void>();

function csrfCookie(): string | null {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === CSRF_COOKIE && value.length) return decodeURIComponent(value.join("="));
  }
  return null;
}

function read(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (raw) {
      const stored = JSON.parse(raw) as Partial<Session>;
      if (stored.token) return { kind: "token", token: stored.token, username: stored.username ?? "", expiresAt: stored.expiresAt ?? null };
    }
  } catch {
    // an unreadable stored session is no session
  }
  return csrfCookie() ? { kind: "cookie", token: null, username: "", expiresAt: null } : null;
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
  if (current?.kind === "cookie" && !csrfCookie()) {
    // the cookies expired (their max-age is the session's absolute lifetime)
    expireSession("Your session has expired. Sign in again.");
  }
  return current;
}

/** A password sign-in's bearer token. */
export function startSession(session: { token: string; username: string; expiresAt: string | null }): void {
  current = { kind: "token", ...session };
  localStorage.setItem(KEY, JSON.stringify(current));
  sessionStorage.removeItem(NOTICE_KEY);
  emit();
}

export function endSession(): void {
  current = null;
  localStorage.removeItem(KEY);
  // The session cookie itself is httpOnly: the server's logout deletes it; without this one the console
  // no longer sends the CSRF token, so that cookie can change nothing.
  document.cookie = `${CSRF_COOKIE}=; Max-Age=0; path=/`;
  emit();
}

/** The server refused the session (expired or revoked): back to sign-in, with the reason shown there. */
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
  if (!session) return {};
  if (session.kind === "token") return { Authorization: `Bearer ${session.token}` };
  const csrf = csrfCookie();
  return csrf ? { [CSRF_HEADER]: csrf } : {};
}

/** The subprotocols a WebSocket to the API offers (a browser cannot set its headers): the token rides in
 * one, base64url, never in the URL; the server answers with the application protocol. With a session
 * cookie instead, the cookie travels by itself and the server checks the page's Origin. */
export function socketProtocols(application: string): string[] {
  const session = getSession();
  // A cookie session (single sign-on) has no token the script can read: the cookie goes by itself.
  if (!session?.token) return [application];
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
