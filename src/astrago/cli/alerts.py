"""Alert commands: `astrago alert ls|resolve|channel|subscribe|subscriptions|unsubscribe|deliveries|rules|
rule|idle-policy`, and `astrago keep ID` (postpone a workload's idle reclaim)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from astrago.cli.errors import CliError
from astrago.cli.http import ApiClient
from astrago.cli.render import age, console, print_json
from astrago.domain.enums import WorkloadKind
from astrago.monitor.alerts.rules import AlertRule, DeliveryStatus, Severity
from astrago.services.schemas import parse_duration_s

alert_app = typer.Typer(
    help="Alerts, notification channels, subscriptions and idle reclaim.", no_args_is_help=True
)
channel_app = typer.Typer(
    help="Notification channels: webhooks, email, Apprise URLs (admins).", no_args_is_help=True
)
policy_app = typer.Typer(help="Idle reclaim policies per workspace and kind (admins).", no_args_is_help=True)
alert_app.add_typer(channel_app, name="channel")
alert_app.add_typer(policy_app, name="idle-policy")

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


def _duration(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_duration_s(value)
    except ValueError as exc:
        raise CliError(f"{what}: {exc}", exit_code=2) from exc


# -- alerts ----------------------------------------------------------------------------------------------


@alert_app.command("ls")
def alert_ls(
    show_all: Annotated[bool, typer.Option("--all", "-a", help="resolved alerts too")] = False,
    resolved: Annotated[bool, typer.Option("--resolved", help="only resolved alerts")] = False,
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
    json_output: JsonOpt = False,
) -> None:
    """Open alerts of your workspaces and workloads (admins: every alert), newest first."""
    state = "resolved" if resolved else (None if show_all else "firing")
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state
    page = ApiClient.from_config().request("GET", "/api/v1/alerts", params=params)
    if json_output:
        print_json(page)
        return
    if not page["items"]:
        console.print("No open alerts." if state == "firing" else "No alerts.")
        return
    table = Table("ID", "STATE", "SEVERITY", "RULE", "KEY", "OPENED", "SUMMARY", box=None, pad_edge=False)
    for a in page["items"]:
        table.add_row(
            str(a["id"]), a["state"], a["severity"], a["rule"], a["key"], age(a["opened_at"]), a["summary"]
        )
    console.print(table)
    console.print(f"{page['open_count']} open")


@alert_app.command("resolve")
def alert_resolve(alert_id: int) -> None:
    """Resolve an open alert by hand (its subscribers hear it)."""
    alert = ApiClient.from_config().request("POST", f"/api/v1/alerts/{alert_id}/resolve")
    console.print(f"Resolved alert {alert['id']} ({alert['rule']} {alert['key']})")


# -- channels ----------------------------------------------------------------------------------------------


@channel_app.command("add")
def channel_add(
    name: str,
    webhook: Annotated[str | None, typer.Option("--webhook", help="POST signed JSON to this URL")] = None,
    secret: Annotated[
        str | None,
        typer.Option("--secret", help="the webhook's HMAC secret (default: one is made and shown once)"),
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="send email to this address (SMTP)")] = None,
    apprise: Annotated[
        str | None,
        typer.Option("--apprise", help="an Apprise URL, e.g. slack://..., mmost://..., tgram://..."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Add a notification channel: exactly one of --webhook, --email, --apprise."""
    given = [
        (kind, target)
        for kind, target in (("webhook", webhook), ("email", email), ("apprise", apprise))
        if target
    ]
    if len(given) != 1:
        raise CliError("give exactly one of --webhook URL, --email ADDRESS, --apprise URL", exit_code=2)
    kind, target = given[0]
    body: dict[str, Any] = {"name": name, "kind": kind, "target": target}
    if secret is not None:
        body["secret"] = secret
    channel = ApiClient.from_config().request("POST", "/api/v1/alert-channels", json=body)
    if json_output:
        print_json(channel)
        return
    console.print(f"Added {channel['kind']} channel {channel['name']} → {channel['target']}")
    if channel.get("secret"):
        console.print(
            f"Signing secret (shown once; receivers check X-AstraGo-Signature with it): {channel['secret']}"
        )
    console.print(
        f"Subscribe it to alerts: astrago alert subscribe {channel['name']} --all | --workspace W | --user U"
    )


@channel_app.command("ls")
def channel_ls(json_output: JsonOpt = False) -> None:
    """Notification channels (their secrets are never shown)."""
    channels = ApiClient.from_config().request("GET", "/api/v1/alert-channels")
    if json_output:
        print_json(channels)
        return
    if not channels:
        console.print("No channels yet: astrago alert channel add NAME --webhook URL")
        return
    table = Table("NAME", "KIND", "TARGET", "SIGNED", "CREATED BY", "AGE", box=None, pad_edge=False)
    for c in channels:
        table.add_row(
            c["name"],
            c["kind"],
            c["target"],
            "yes" if c["signed"] else "-",
            c["created_by"] or "-",
            age(c["created_at"]),
        )
    console.print(table)


@channel_app.command("rm")
def channel_rm(name: str) -> None:
    """Remove a channel with its subscriptions and delivery log."""
    ApiClient.from_config().request("DELETE", f"/api/v1/alert-channels/{quote(name, safe='')}")
    console.print(f"Removed channel {name}")


# -- subscriptions ---------------------------------------------------------------------------------------


@alert_app.command("subscribe")
def subscribe(
    channel: str,
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="alerts of this workspace")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="alerts of this user's workloads")] = None,
    every: Annotated[bool, typer.Option("--all", help="every alert, node alerts included")] = False,
    rule: Annotated[
        list[AlertRule] | None, typer.Option("--rule", help="only this rule (repeatable)")
    ] = None,
    min_severity: Annotated[Severity, typer.Option("--min-severity")] = Severity.INFO,
    json_output: JsonOpt = False,
) -> None:
    """Send a channel the alerts of a workspace, of a user's workloads, or all of them."""
    body: dict[str, Any] = {"channel": channel, "all": every, "min_severity": min_severity.value}
    if workspace:
        body["workspace"] = workspace
    if user:
        body["user"] = user
    if rule:
        body["rules"] = [r.value for r in rule]
    sub = ApiClient.from_config().request("POST", "/api/v1/alert-subscriptions", json=body)
    if json_output:
        print_json(sub)
        return
    whose = (
        f"workspace {sub['workspace']}"
        if sub["workspace"]
        else f"user {sub['user']}"
        if sub["user"]
        else "all"
    )
    console.print(f"Subscribed {sub['channel']} to {whose} alerts (id {sub['id']})")


@alert_app.command("subscriptions")
def subscriptions(json_output: JsonOpt = False) -> None:
    """Which channels receive which alerts."""
    subs = ApiClient.from_config().request("GET", "/api/v1/alert-subscriptions")
    if json_output:
        print_json(subs)
        return
    table = Table("ID", "CHANNEL", "WHOSE", "RULES", "MIN SEVERITY", box=None, pad_edge=False)
    for s in subs:
        whose = (
            f"workspace {s['workspace']}" if s["workspace"] else f"user {s['user']}" if s["user"] else "all"
        )
        table.add_row(s["id"], s["channel"], whose, ",".join(s["rules"] or ["all"]), s["min_severity"])
    console.print(table)


@alert_app.command("unsubscribe")
def unsubscribe(subscription_id: str) -> None:
    """Stop sending a subscription's alerts to its channel."""
    ApiClient.from_config().request(
        "DELETE", f"/api/v1/alert-subscriptions/{quote(subscription_id, safe='')}"
    )
    console.print(f"Removed subscription {subscription_id}")


# -- delivery log, rules -----------------------------------------------------------------------------------


@alert_app.command("deliveries")
def deliveries(
    alert: Annotated[int | None, typer.Option("--alert", help="of this alert")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="to this channel")] = None,
    status: Annotated[DeliveryStatus | None, typer.Option("--status")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
    json_output: JsonOpt = False,
) -> None:
    """The delivery log: each notification's status, attempts and last error (admins)."""
    params: dict[str, Any] = {"limit": limit}
    for key, value in (("alert", alert), ("channel", channel), ("status", status.value if status else None)):
        if value is not None:
            params[key] = value
    rows = ApiClient.from_config().request("GET", "/api/v1/alert-deliveries", params=params)
    if json_output:
        print_json(rows)
        return
    table = Table(
        "ID",
        "ALERT",
        "RULE",
        "CHANNEL",
        "EVENT",
        "STATUS",
        "ATTEMPTS",
        "AGE",
        "LAST ERROR",
        box=None,
        pad_edge=False,
    )
    for d in rows:
        table.add_row(
            str(d["id"]),
            str(d["alert_id"]),
            d["rule"],
            d["channel"],
            d["event"],
            d["status"],
            str(d["attempts"]),
            age(d["created_at"]),
            d["last_error"] or "",
        )
    console.print(table)


@alert_app.command("rules")
def rules(json_output: JsonOpt = False) -> None:
    """The built-in rules and their thresholds (admins)."""
    rows = ApiClient.from_config().request("GET", "/api/v1/alert-rules")
    if json_output:
        print_json(rows)
        return
    table = Table("RULE", "ENABLED", "THRESHOLD", "FOR", "WHAT", box=None, pad_edge=False)
    for r in rows:
        threshold = "-" if r["threshold"] is None else f"{r['threshold']:g} %"
        duration = "-" if r["for_s"] is None else f"{r['for_s']:g} s"
        table.add_row(r["rule"], "yes" if r["enabled"] else "no", threshold, duration, r["description"])
    console.print(table)


@alert_app.command("rule")
def rule_set(
    rule: AlertRule,
    threshold: Annotated[float | None, typer.Option("--threshold", help="percent")] = None,
    for_: Annotated[
        str | None, typer.Option("--for", help="how long the condition must hold: 30m, 2h")
    ] = None,
    enable: Annotated[bool | None, typer.Option("--enable/--disable")] = None,
) -> None:
    """Change a built-in rule (admins): `astrago alert rule workload-pending --for 1h`."""
    body: dict[str, Any] = {}
    if threshold is not None:
        body["threshold"] = threshold
    if (seconds := _duration(for_, "--for")) is not None:
        body["for_s"] = seconds
    if enable is not None:
        body["enabled"] = enable
    r = ApiClient.from_config().request("PATCH", f"/api/v1/alert-rules/{rule.value}", json=body)
    console.print(f"{r['rule']}: enabled={r['enabled']} threshold={r['threshold']} for_s={r['for_s']}")


# -- idle reclaim ----------------------------------------------------------------------------------------


@policy_app.command("ls")
def policy_ls(json_output: JsonOpt = False) -> None:
    """Idle reclaim policies (the first row without an id is the platform's default)."""
    rows = ApiClient.from_config().request("GET", "/api/v1/idle-policies")
    if json_output:
        print_json(rows)
        return
    table = Table(
        "WORKSPACE",
        "KIND",
        "ENABLED",
        "GPU BELOW",
        "IDLE FOR",
        "WARN BEFORE",
        "KEEP",
        "KEEP CAP",
        box=None,
        pad_edge=False,
    )
    for p in rows:
        table.add_row(
            p["workspace"] or "*",
            p["kind"],
            "yes" if p["enabled"] else "no",
            f"{p['gpu_util_below_percent']:g} %",
            f"{p['idle_for_s'] / 60:g} min",
            f"{p['warn_before_s'] / 60:g} min",
            f"{p['postpone_s'] / 60:g} min",
            f"{p['max_postpone_s'] / 60:g} min",
        )
    console.print(table)


@policy_app.command("set")
def policy_set(
    kind: Annotated[
        WorkloadKind, typer.Option("--kind", help="the kind of workload it applies to")
    ] = WorkloadKind.INTERACTIVE,
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="default: every workspace")
    ] = None,
    gpu_below: Annotated[
        float, typer.Option("--gpu-below", help="GPU utilisation % that counts as idle")
    ] = 5.0,
    idle_for: Annotated[str, typer.Option("--idle-for", help="idle this long before the stop")] = "60m",
    warn_before: Annotated[str, typer.Option("--warn-before", help="warn this long before the stop")] = "15m",
    postpone: Annotated[str, typer.Option("--postpone", help="each `astrago keep` adds this")] = "60m",
    max_postpone: Annotated[str, typer.Option("--max-postpone", help="keeping never goes past this")] = "4h",
    disable: Annotated[bool, typer.Option("--disable", help="never reclaim these workloads")] = False,
) -> None:
    """Create or replace the policy of one workspace (or all) and kind."""
    body = {
        "kind": kind.value,
        "workspace": workspace,
        "enabled": not disable,
        "gpu_util_below_percent": gpu_below,
        "idle_for_s": _duration(idle_for, "--idle-for"),
        "warn_before_s": _duration(warn_before, "--warn-before"),
        "postpone_s": _duration(postpone, "--postpone"),
        "max_postpone_s": _duration(max_postpone, "--max-postpone"),
    }
    p = ApiClient.from_config().request("PUT", "/api/v1/idle-policies", json=body)
    state = "enabled" if p["enabled"] else "disabled"
    console.print(f"Idle policy for {p['kind']} workloads of {p['workspace'] or 'every workspace'}: {state}")


@policy_app.command("rm")
def policy_rm(
    kind: Annotated[WorkloadKind, typer.Option("--kind")] = WorkloadKind.INTERACTIVE,
    workspace: Annotated[str | None, typer.Option("--workspace", "-w")] = None,
) -> None:
    params = {"workspace": workspace} if workspace else {}
    ApiClient.from_config().request("DELETE", f"/api/v1/idle-policies/{kind.value}", params=params)
    console.print(f"Removed the idle policy for {kind.value} workloads of {workspace or 'every workspace'}")


def keep(
    workload_id: Annotated[str, typer.Argument(metavar="ID", help="the workload to keep running")],
    json_output: JsonOpt = False,
) -> None:
    """Postpone a workload's idle reclaim (up to its policy's hard cap)."""
    notice = ApiClient.from_config().request("POST", f"/api/v1/workloads/{quote(workload_id, safe='')}/keep")
    if json_output:
        print_json(notice)
        return
    console.print(
        f"Kept {workload_id} running: it stops at {notice['stop_at']} unless it is used "
        f"(keeping cannot go past {notice['latest_stop_at']})"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(alert_app, name="alert")
    app.command()(keep)
