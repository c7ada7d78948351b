import { Badge, Group, Stack, Text } from "@mantine/core";

import type { Schemas } from "../api/client";

type Device = Schemas["DeviceOut"];
type Cordon = Schemas["CordonOut"];

const HEALTH_COLOR: Record<string, string> = { healthy: "green", degraded: "yellow", unhealthy: "red" };

/** "cordoned by admin: BIOS update" */
export function cordonText(cordon: Cordon): string {
  const by = cordon.cordoned_by ? `cordoned by ${cordon.cordoned_by}` : "cordoned";
  return cordon.reason ? `${by}: ${cordon.reason}` : by;
}

/** A GPU's health (a fenced GPU takes no new work; the cause says why) and an admin's cordon. */
export function DeviceHealth({ device }: { device: Device }) {
  const state = device.healthy ? (device.health?.state ?? "healthy") : "unhealthy";
  const cause = device.healthy ? device.health?.cause : "not answering the driver";
  return (
    <Stack gap={2}>
      <Group gap={4}>
        <Badge color={HEALTH_COLOR[state] ?? "gray"} variant={state === "healthy" ? "light" : "filled"} data-health={state}>
          {state}
        </Badge>
        {device.cordon && <Badge color="orange" title={cordonText(device.cordon)}>cordoned</Badge>}
      </Group>
      {cause && <Text size="xs" c={state === "unhealthy" ? "red" : "dimmed"}>{state === "unhealthy" ? `fenced: ${cause}` : cause}</Text>}
      {device.cordon && <Text size="xs" c="dimmed">{cordonText(device.cordon)}</Text>}
    </Stack>
  );
}
