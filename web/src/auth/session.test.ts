import { beforeEach, describe, expect, it } from "vitest";

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
