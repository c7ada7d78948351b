// A terminal in a running replica over WEBSOCKET /api/v1/workloads/{id}/exec (the server's PTY).
// Frames from the server: binary, first byte the stream (1 stdout, 2 stderr), then its bytes; at the end a
// text frame {"type": "exit", "code": N} and a normal close. To the server: binary stdin (first byte 0),
// text {"type": "resize", rows, cols}. Authentication rides in the subprotocols (see socketProtocols).
import { socketProtocols } from "../auth/session";

export const TERMINAL_PROTOCOL = "astrago.exec.v1";
const STDIN = 0;
// A login shell where the image has bash, a plain sh where it does not.
export const SHELL = ["/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi"];

export function terminalUrl(location: Pick<Location, "protocol" | "host">, workloadId: string, replica: number, rows: number, cols: number): string {
  const query = new URLSearchParams(SHELL.map((part) => ["command", part]));
  query.set("tty", "true");
  query.set("replica", String(replica));
  query.set("rows", String(rows));
  query.set("cols", String(cols));
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/workloads/${encodeURIComponent(workloadId)}/exec?${query}`;
}

export type ServerFrame = { kind: "output"; data: Uint8Array } | { kind: "exit"; code: number } | { kind: "other" };

export function parseFrame(data: ArrayBuffer | string): ServerFrame {
  if (typeof data !== "string") return { kind: "output", data: new Uint8Array(data).subarray(1) };
  const message = JSON.parse(data) as { type?: string; code?: number };
  return message.type === "exit" && typeof message.code === "number" ? { kind: "exit", code: message.code } : { kind: "other" };
}

export function stdinFrame(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const frame = new Uint8Array(bytes.length + 1);
  frame[0] = STDIN;
  frame.set(bytes, 1);
  return frame;
}

export function resizeFrame(rows: number, cols: number): string {
  return JSON.stringify({ type: "resize", rows, cols });
}

/** Why a session is over, in words; `exitCode` is null when the connection closed without one. */
export function endMessage(exitCode: number | null, close: Pick<CloseEvent, "code" | "reason">, opened: boolean): string {
  if (!opened) {
    // A refused handshake reaches a page only as code 1006: the server's problem is not readable here.
    return "The server refused the terminal: it takes a member's role in the workload's workspace, and a running workload.";
  }
  if (exitCode !== null) {
    return exitCode >= 128 && exitCode < 160
      ? `The session ended: the shell was stopped by signal ${exitCode - 128} (exit code ${exitCode}).`
      : `The session ended with exit code ${exitCode}.`;
  }
  if (close.reason) return `The terminal closed: ${close.reason}`;
  return `The connection to the terminal was lost (code ${close.code}).`;
}

export interface TerminalHandlers {
  output(data: Uint8Array): void;
  ended(message: string, exitCode: number | null): void;
}

export interface TerminalConnection {
  send(text: string): void;
  resize(rows: number, cols: number): void;
  close(): void;
}

export function connectTerminal(workloadId: string, replica: number, rows: number, cols: number, handlers: TerminalHandlers): TerminalConnection {
  const socket = new WebSocket(terminalUrl(window.location, workloadId, replica, rows, cols), socketProtocols(TERMINAL_PROTOCOL));
  socket.binaryType = "arraybuffer";
  let exitCode: number | null = null;
  let opened = false;
  let closedByUs = false;
  socket.onopen = () => {
    opened = true;
  };
  socket.onmessage = (event: MessageEvent<ArrayBuffer | string>) => {
    const frame = parseFrame(event.data);
    if (frame.kind === "output") handlers.output(frame.data);
    else if (frame.kind === "exit") exitCode = frame.code;
  };
  socket.onclose = (event) => {
    if (!closedByUs) handlers.ended(endMessage(exitCode, event, opened), exitCode);
  };
  // Keys typed before the handshake completes, or after the session ended, have nowhere to go.
  const sendIfOpen = (frame: Uint8Array | string) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(frame);
  };
  return {
    send: (text) => sendIfOpen(stdinFrame(text)),
    resize: (rows, columns) => sendIfOpen(resizeFrame(rows, columns)),
    close: () => {
      closedByUs = true;
      socket.close();
    },
  };
}
