// The workload page's Terminal tab: a shell in a running replica (xterm.js over the exec WebSocket).
import "@xterm/xterm/css/xterm.css";

import { Alert, Button, Card, Group, Select, Text, Title } from "@mantine/core";
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import { useEffect, useRef, useState } from "react";

import type { Workload } from "../api/client";
import { connectTerminal } from "../live/terminal";

const ENDED = ["SUCCEEDED", "FAILED", "CANCELLED"];

function Session({ workloadId, replica, onEnded }: { workloadId: string; replica: number; onEnded: (message: string) => void }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!box.current) return;
    const terminal = new Terminal({ cursorBlink: true, fontSize: 13, convertEol: false, scrollback: 5000 });
    const fit = new FitAddon();
    terminal.loadAddon(fit);
    terminal.open(box.current);
    fit.fit();
    // xterm.js draws nothing while it is out of view; the tab sits below the page's cards, so show it
    box.current.scrollIntoView?.({ block: "nearest" });
    const connection = connectTerminal(workloadId, replica, terminal.rows, terminal.cols, {
      output: (data) => terminal.write(data),
      ended: (message) => {
        terminal.options.disableStdin = true;
        onEnded(message);
      },
    });
    const typed = terminal.onData((text) => connection.send(text));
    const resized = terminal.onResize(({ rows, cols }) => connection.resize(rows, cols));
    const refit = () => fit.fit(); // the terminal reports its new size through onResize
    window.addEventListener("resize", refit);
    terminal.focus();
    return () => {
      window.removeEventListener("resize", refit);
      typed.dispose();
      resized.dispose();
      connection.close();
      terminal.dispose();
    };
  }, [workloadId, replica, onEnded]);
  return <div ref={box} data-testid="terminal" style={{ height: 420, background: "#000", padding: 4 }} />;
}

export function WorkloadTerminal({ workload }: { workload: Workload }) {
  const [replica, setReplica] = useState(0);
  const [attempt, setAttempt] = useState(0);
  const [ended, setEnded] = useState<string | null>(null);
  const running = workload.status === "RUNNING";
  // Once opened, the terminal stays on the page after its session ends (its last output, and why).
  const [opened, setOpened] = useState(running);
  useEffect(() => {
    if (running) setOpened(true);
  }, [running]);

  const restart = (next: number) => {
    setReplica(next);
    setEnded(null);
    setAttempt((n) => n + 1);
  };

  return (
    <Card withBorder>
      <Group justify="space-between" mb="xs">
        <Title order={4}>Terminal</Title>
        <Group gap="sm">
          {workload.replicas > 1 && (
            <Select
              aria-label="Terminal replica"
              w={130}
              value={String(replica)}
              onChange={(v) => restart(Number(v ?? 0))}
              data={Array.from({ length: workload.replicas }, (_, i) => ({ value: String(i), label: `replica ${i}` }))}
            />
          )}
          {ended && running && <Button size="xs" variant="default" onClick={() => restart(replica)}>New session</Button>}
        </Group>
      </Group>
      {ended && (
        <Alert color="gray" mb="xs" data-testid="terminal-ended">
          {ended}
          {!running && ENDED.includes(workload.status) && ` The workload has ended (${workload.status}).`}
        </Alert>
      )}
      {opened ? (
        <Session key={`${replica}-${attempt}`} workloadId={workload.id} replica={replica} onEnded={setEnded} />
      ) : (
        <Text c="dimmed" size="sm" data-testid="terminal-unavailable">
          {ENDED.includes(workload.status)
            ? `The workload has ended (${workload.status}): a terminal runs only while it runs.`
            : "A terminal opens once the workload is running."}
        </Text>
      )}
    </Card>
  );
}
