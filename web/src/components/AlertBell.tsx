import { Indicator, UnstyledButton } from "@mantine/core";
import { Link } from "@tanstack/react-router";

import { useOpenAlertCount } from "../api/alerts";

/** The header's bell: how many open alerts concern the signed-in user; links to the alerts page. */
export function AlertBellView({ count }: { count: number }) {
  const label = count === 1 ? "1 open alert" : `${count} open alerts`;
  return (
    <UnstyledButton component={Link} to="/alerts" aria-label={label} title={label} data-testid="alert-bell">
      <Indicator label={count} size={16} color="red" disabled={count === 0} offset={2}>
        <span aria-hidden style={{ fontSize: 20, lineHeight: 1 }}>🔔</span>
      </Indicator>
    </UnstyledButton>
  );
}

export function AlertBell() {
  const count = useOpenAlertCount();
  return <AlertBellView count={count.data ?? 0} />;
}
