import { Anchor, Stack, Text, Title } from "@mantine/core";
import { Link } from "@tanstack/react-router";

export function NotFoundPage() {
  return (
    <Stack p="xl">
      <Title order={2}>Page not found</Title>
      <Text>
        Nothing lives at this address. <Anchor component={Link} to="/">Go to the overview</Anchor>.
      </Text>
    </Stack>
  );
}
