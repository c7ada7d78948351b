import { Indicator, UnstyledButton } from "@mantine/core";
import { Link } from "@tanstack/react-router";

import { useOpenAlertCount } from "../api/alerts";

/** The header's bell: how many open alerts concern the signed-in user; links to the alerts page. */
export function AlertBellView({ count }: { count: number }) {
  const label = count === 1 ? "1 open alert" : `${count} open alerts`;
  return (
    <UnstyledButton component={Link} to="/alerts" aria-label={label} title={label} data-testid="alert-bell">
      <Indicator label={count} size={16} color="red" disabled={count === 0} offset={2}>
        {/* an SVG, not the emoji: not every system has a font with a bell */}
        <svg aria-hidden width="20" height="20" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
          <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
          <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
        </svg>
      </Indicator>
    </UnstyledButton>
  );
}

export function AlertBell() {
  const count = useOpenAlertCount();
  return <AlertBellView count={count.data ?? 0} />;
}
