import { afterEach, describe, expect, it } from "vitest";

import { endSession, socketProtocols, startSession } from "../auth/session";
import { notReadyReason } from "../pages/WorkloadEndpoints";
import { endMessage, parseFrame, resizeFrame, SHELL, stdinFrame, terminalUrl, TERMINAL_PROTOCOL } from "./terminal";

describe("the terminal protocol", () => {
  afterEach(() => endSession());

  it("asks for a shell on a PTY of the chosen replica, over wss on an https page", () => {
    const url = new URL(terminalUrl({ protocol: "https:", host: "gpu.example:8443" }, "wl 1", 2, 30, 100));
    expect(url.protocol).toBe("wss:");
    expect(url.pathname).toBe("/api/v1/workloads/wl%201/exec");
    expect(url.searchParams.getAll("command")).toEqual(SHELL);
    expect(Object.fromEntries([...url.searchParams].filter(([k]) => k !== "command"))).toEqual({
      tty: "true", replica: "2", rows: "30", cols: "100",
    });
  });

  it("keeps the token out of the URL: it rides in a subprotocol, base64url without padding", () => {
    expect(socketProtocols(TERMINAL_PROTOCOL)).toEqual([TERMINAL_PROTOCOL]);
    startSession({ token: "ast_a+b/c?", username: "alice", expiresAt: null });
    const [application, bearer] = socketProtocols(TERMINAL_PROTOCOL);
    expect(application).toBe(TERMINAL_PROTOCOL);
    expect(bearer).toBe("astrago.bearer.YXN0X2ErYi9jPw");
    expect(terminalUrl({ protocol: "http:", host: "h" }, "w", 0, 24, 80)).not.toContain("ast_");
  });

  it("frames keys as stdin, sizes as resize messages, and reads output and the exit code", () => {
    expect([...stdinFrame("é\r")]).toEqual([0, 0xc3, 0xa9, 13]);
    expect(JSON.parse(resizeFrame(40, 132))).toEqual({ type: "resize", rows: 40, cols: 132 });
    const frame = parseFrame(new Uint8Array([1, 104, 105]).buffer);
    expect(frame.kind === "output" && new TextDecoder().decode(frame.data)).toBe("hi");
    expect(parseFrame('{"type": "exit", "code": 3}')).toEqual({ kind: "exit", code: 3 });
  });

  it("says how a session ended", () => {
    expect(endMessage(3, { code: 1000, reason: "" }, true)).toBe("The session ended with exit code 3.");
    expect(endMessage(137, { code: 1000, reason: "" }, true)).toContain("signal 9");
    expect(endMessage(null, { code: 1006, reason: "" }, false)).toContain("refused");
    expect(endMessage(null, { code: 1006, reason: "" }, true)).toContain("lost");
  });
});

describe("an endpoint's Open button", () => {
  const endpoint = { port: 8888, path: "/proxy/w/8888/", ready: false, replicas_ready: 0, replicas: 2 };
  it("is enabled only when a replica is ready, and otherwise says why", () => {
    expect(notReadyReason({ status: "RUNNING" }, { ...endpoint, ready: true, replicas_ready: 1 })).toBeNull();
    expect(notReadyReason({ status: "PENDING" }, endpoint)).toContain("waiting to be scheduled");
    expect(notReadyReason({ status: "STARTING" }, endpoint)).toContain("readiness check");
    expect(notReadyReason({ status: "RUNNING" }, endpoint)).toBe("No replica is ready on port 8888 yet (0 of 2 ready).");
  });
});
