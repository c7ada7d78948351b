import { Group, Progress, Text, Tooltip } from "@mantine/core";

/** Use against a guarantee and a limit: the guaranteed part, what is borrowed beyond it, and the limit. */
export function UsageBar({
  label,
  used,
  guaranteed,
  limit,
  unit,
}: {
  label: string;
  used: number;
  guaranteed: number;
  limit: number | null;
  unit: string;
}) {
  const scale = Math.max(limit ?? 0, guaranteed, used, 1);
  const within = Math.min(used, guaranteed);
  const borrowed = Math.max(used - guaranteed, 0);
  const fmt = (n: number) => `${Number.isInteger(n) ? n : n.toFixed(2)}`;
  return (
    <div>
      <Group justify="space-between" gap={4}>
        <Text size="sm" fw={500}>
          {label}
        </Text>
        <Text size="xs" c="dimmed">
          {fmt(used)} used · {fmt(guaranteed)} guaranteed · limit {limit === null ? "none" : fmt(limit)} {unit}
        </Text>
      </Group>
      <Tooltip label={`${fmt(within)} within the guarantee, ${fmt(borrowed)} borrowed`}>
        <Progress.Root size="lg" aria-label={`${label}: ${fmt(used)} of ${limit === null ? "unlimited" : fmt(limit)} ${unit}`}>
          <Progress.Section value={(within / scale) * 100} color="blue" />
          <Progress.Section value={(borrowed / scale) * 100} color="orange" />
        </Progress.Root>
      </Tooltip>
    </div>
  );
}
