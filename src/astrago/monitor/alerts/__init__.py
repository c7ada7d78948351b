"""Alerts and idle reclaim: built-in rules evaluated in the background, open/resolved alerts with one open
per rule and key, notification channels (signed webhooks, SMTP email, Apprise URLs) with retried
deliveries and a delivery log, and the idle-reclaim policy that warns before it stops a workload."""
