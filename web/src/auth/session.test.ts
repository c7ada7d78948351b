import { beforeEach, describe, expect, it, vi } from "vitest";

import { authHeaders, endSession, expireSession, getSession, startSession, takeSignInNotice } from "./session";

describe("the session", () => {
  beforeEach(() => {
    endSession();
    sessionStorage.clear();
  });

  it("survives a reload: it is kept in localStorage and sent as a bearer token", () => {
    startSession({ token: "secret", username: "alice", expiresAt: null });
    expect(JSON.parse(localStorage.getItem("astrago.session")!).username).toBe("alice");
    expect(authHeaders()).toEqual({ Authorization: "Bearer secret" });
  });

  it("ends when it expires, leaving a message for the sign-in page", () => {
    startSession({ token: "secret", username: "alice", expiresAt: new Date(Date.now() - 1000).toISOString() });
    expect(getSession()).toBeNull();
    expect(localStorage.getItem("astrago.session")).toBeNull();
    expect(takeSignInNotice()).toContain("expired");
  });

  it("keeps the server's reason when the server ends it", () => {
    startSession({ token: "secret", username: "alice", expiresAt: null });
    expireSession("the token is not valid; log in again");
    expect(authHeaders()).toEqual({});
    expect(takeSignInNotice()).toBe("the token is not valid; log in again");
  });
});

describe("a cookie session (after Sign in with SSO)", () => {
  beforeEach(() => {
    endSession();
    sessionStorage.clear();
  });

  it("is found from the readable CSRF cookie and echoes it on every request", async () => {
    document.cookie = "astrago_csrf=abc%2Fdef; path=/";
    vi.resetModules();
    const fresh = await import("./session");
    expect(fresh.getSession()).toEqual({ kind: "cookie", token: null, username: "", expiresAt: null });
    expect(fresh.authHeaders()).toEqual({ "X-CSRF-Token": "abc/def" });
    // a terminal's WebSocket offers no bearer subprotocol: the cookie authenticates it
    expect(fresh.socketProtocols("astrago.exec.v1")).toEqual(["astrago.exec.v1"]);
    fresh.endSession();
    expect(document.cookie).not.toContain("astrago_csrf");
    expect(fresh.authHeaders()).toEqual({});
  });

  it("prefers a password sign-in's token kept in localStorage", async () => {
    document.cookie = "astrago_csrf=abc; path=/";
    startSession({ token: "secret", username: "alice", expiresAt: null });
    vi.resetModules();
    const fresh = await import("./session");
    expect(fresh.authHeaders()).toEqual({ Authorization: "Bearer secret" });
    fresh.endSession();
  });

  it("ends when the server expires it", async () => {
    document.cookie = "astrago_csrf=abc; path=/";
    vi.resetModules();
    const fresh = await import("./session");
    fresh.expireSession("Your session has ended. Sign in again.");
    expect(fresh.getSession()).toBeNull();
    expect(document.cookie).not.toContain("astrago_csrf");
  });
});
