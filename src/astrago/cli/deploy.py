"""`astrago deploy ...`: install the whole stack onto a cluster, online or air-gapped (docs/deploy.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from astrago.cli.errors import CliError
from astrago.deploy import apply, bundle, compat, gitops, inventory, preflight, secrets, setimage
from astrago.deploy.environments import load_environment
from astrago.deploy.errors import DeployError
from astrago.deploy.helm import Helm
from astrago.deploy.render import RenderedRelease, Target, open_target, write_manifests
from astrago.deploy.stack import Release, load_stack

console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False, soft_wrap=True)

deploy_app = typer.Typer(
    name="deploy",
    help="Install the AstraGo stack onto a Kubernetes cluster with helm, online or air-gapped.",
    no_args_is_help=True,
)
env_app = typer.Typer(help="Create and configure environments.", no_args_is_help=True)
deploy_app.add_typer(env_app, name="env")

EnvOption = Annotated[
    str, typer.Option("--env", "-e", help="Environment: prod, dev, dev2, stage, astrago, ...")
]
RootOption = Annotated[
    Path | None,
    typer.Option("--root", help="The deploy/ directory (default: ASTRAGO_DEPLOY_ROOT or ./deploy upwards)."),
]
SelectorOption = Annotated[
    list[str] | None,
    typer.Option("--selector", "-l", help="Only releases with these labels, e.g. app=keycloak."),
]
ChartsOption = Annotated[
    Path | None,
    typer.Option(
        "--charts", help="Local chart directory (<chart>/ or <chart>-<version>.tgz), e.g. a bundle's charts/."
    ),
]
HelmOption = Annotated[
    str | None, typer.Option("--helm", help="The helm binary (default: ASTRAGO_HELM or PATH).")
]
ContextOption = Annotated[str | None, typer.Option("--kube-context", help="kubeconfig context for helm.")]
TimeoutOption = Annotated[str, typer.Option("--timeout", help="helm --timeout per release.")]


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(deploy_app, name="deploy")


@contextmanager
def deploy_errors() -> Iterator[None]:
    try:
        yield
    except DeployError as exc:
        raise CliError(exc.describe(), exit_code=1, hint=exc.hint) from exc


def _relative(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def find_root(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    if os.environ.get("ASTRAGO_DEPLOY_ROOT"):
        return Path(os.environ["ASTRAGO_DEPLOY_ROOT"])
    for directory in (Path.cwd(), *Path.cwd().parents):
        if (directory / "deploy" / "stack.yaml").is_file():
            return directory / "deploy"
    raise CliError(
        "no deploy/stack.yaml here or above", exit_code=2, hint="run inside the repository or pass --root"
    )


def _target(
    root: Path | None, env: str, charts: Path | None, helm: str | None, context: str | None
) -> Target:
    return open_target(find_root(root), env, charts_dir=charts, helm=Helm(helm, kube_context=context))


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=not console.is_terminal,
    )


def _refuse_failed_checks(target: Target) -> None:
    findings = compat.check_environment(target.stack, target.environment)
    errors = [f"{f.subject} {f.message}" for f in findings if f.level is compat.Level.ERROR]
    if errors:
        raise CliError(
            f"environment {target.environment.name} fails its checks, nothing was installed: "
            + "; ".join(errors),
            hint=f"see `astrago deploy check -e {target.environment.name}` (or pass --no-check)",
        )


def _render_with_progress(target: Target, selectors: list[str]) -> list[RenderedRelease]:
    releases = target.releases(selectors)
    with _progress() as progress:
        task = progress.add_task(f"rendering {len(releases)} release(s)", total=len(releases))
        return target.render(selectors, on_done=lambda _: progress.advance(task))


# ---- environments ---------------------------------------------------------------------------------------


@env_app.command("init")
def env_init(
    env: EnvOption,
    external_ip: Annotated[str | None, typer.Option(help="Address users reach AstraGo on.")] = None,
    nfs_server: Annotated[str | None, typer.Option(help="NFS server address.")] = None,
    nfs_path: Annotated[str | None, typer.Option(help="Base path of the NFS export.")] = None,
    registry: Annotated[
        str | None, typer.Option(help="Offline registry HOST:PORT (air-gapped installs only).")
    ] = None,
    http_server: Annotated[
        str | None, typer.Option(help="Offline HTTP server URL (air-gapped installs only).")
    ] = None,
    rotate_secrets: Annotated[bool, typer.Option(help="Generate every secret anew.")] = False,
    no_input: Annotated[
        bool, typer.Option("--no-input", help="Never prompt: a missing answer is an error.")
    ] = False,
    root: RootOption = None,
) -> None:
    """Ask what the seeds' `offline_deploy_astrago.sh env` asks; write values.yaml and fresh secrets."""
    flags = {
        "externalIP": external_ip,
        "nfs.server": nfs_server,
        "nfs.basePath": nfs_path,
        "offline.registry": registry,
        "offline.httpServer": http_server,
    }
    base = find_root(root)
    with deploy_errors():
        current = _current_values(base, env)
        answers: dict[str, str] = {}
        for question in secrets.QUESTIONS:
            given = flags[question.key]
            if given is None and no_input and question.optional:
                # online is the default: the offline registry and HTTP server need asking only offline
                given = current.get(question.key, "")
            if given is None:
                if no_input:
                    raise CliError(
                        f"{question.key} is not given and --no-input forbids asking",
                        exit_code=2,
                        hint="pass every answer as a flag (see --help)",
                    )
                given = typer.prompt(
                    question.prompt, default=current.get(question.key, ""), show_default=True
                )
            answers[question.key] = secrets.validate_answer(question, given)
        values_path = secrets.write_answers(base, env, answers)
        secrets_path, written = secrets.write_secrets(base, env, rotate=rotate_secrets)
        load_environment(base, env)
    console.print(f"wrote {values_path}")
    state = f"generated {', '.join(written)}" if written else "kept the existing secrets"
    console.print(f"wrote {secrets_path} (mode 600, git-ignored): {state}")


def _current_values(base: Path, env: str) -> dict[str, str]:
    try:
        environment = load_environment(base, env)
    except DeployError:
        return {}
    found = {}
    for question in secrets.QUESTIONS:
        try:
            found[question.key] = str(environment.get(question.key) or "")
        except KeyError:
            continue
    return found


# ---- render / diff / sync / status / destroy -------------------------------------------------------------


@deploy_app.command()
def render(
    env: EnvOption,
    selector: SelectorOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write one manifest file per release here.")
    ] = None,
    charts: ChartsOption = None,
    root: RootOption = None,
    helm: HelmOption = None,
) -> None:
    """Render the environment's manifests with helm (nothing is applied)."""
    with deploy_errors():
        target = _target(root, env, charts, helm, None)
        rendered = _render_with_progress(target, selector or [])
    if out is None:
        for item in rendered:
            out_console.out(f"# release {item.release.name} ({item.chart.name} {item.chart.version})")
            out_console.out(item.manifest.rstrip("\n"))
        return
    for path in write_manifests(rendered, out):
        console.print(f"wrote {path}")


@deploy_app.command()
def diff(
    env: EnvOption,
    selector: SelectorOption = None,
    charts: ChartsOption = None,
    root: RootOption = None,
    helm: HelmOption = None,
    kube_context: ContextOption = None,
) -> None:
    """Show what `sync` would change against what the cluster runs. Exit 1 when something differs."""
    with deploy_errors():
        target = _target(root, env, charts, helm, kube_context)
        rendered = _render_with_progress(target, selector or [])
        changes = apply.diff(target, rendered)
    for text in changes.values():
        out_console.out(text.rstrip("\n"))
    if changes:
        raise typer.Exit(1)
    console.print("no changes")


@deploy_app.command()
def sync(
    env: EnvOption,
    selector: SelectorOption = None,
    charts: ChartsOption = None,
    root: RootOption = None,
    helm: HelmOption = None,
    kube_context: ContextOption = None,
    timeout: TimeoutOption = "10m",
    no_check: Annotated[
        bool, typer.Option("--no-check", help="Skip `check` (versions, passwords) before installing.")
    ] = False,
) -> None:
    """Render every selected release, then `helm upgrade --install --wait` them in dependency order."""
    with deploy_errors():
        target = _target(root, env, charts, helm, kube_context)
        if not no_check:
            _refuse_failed_checks(target)
        rendered = _render_with_progress(target, selector or [])
        with _progress() as progress:
            task = progress.add_task("syncing", total=len(rendered))

            def step(phase: str, release: Release) -> None:
                if phase == "installing":
                    progress.update(task, description=f"installing {release.name} → {release.namespace}")
                else:
                    progress.advance(task)
                    console.print(f"[green]✓[/] {release.name}")

            apply.sync(target, rendered, step, timeout=timeout)
    console.print(f"environment {env}: {len(rendered)} release(s) in sync")


@deploy_app.command()
def status(
    env: EnvOption,
    selector: SelectorOption = None,
    root: RootOption = None,
    helm: HelmOption = None,
    kube_context: ContextOption = None,
) -> None:
    """Each release's helm status in the cluster."""
    with deploy_errors():
        target = _target(root, env, None, helm, kube_context)
        statuses = apply.status(target, target.releases(selector or []))
    table = Table(title=f"environment {env}")
    for column in ("release", "namespace", "status", "revision", "chart", "updated"):
        table.add_column(column)
    for item in statuses:
        colour = "green" if item.status == "deployed" else "yellow" if not item.installed else "red"
        table.add_row(
            item.release.name,
            item.release.namespace,
            f"[{colour}]{item.status}[/]",
            str(item.revision or ""),
            item.chart or "",
            item.updated or "",
        )
    out_console.print(table)
    if any(item.status != "deployed" for item in statuses):
        raise typer.Exit(1)


@deploy_app.command()
def destroy(
    env: EnvOption,
    selector: SelectorOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    root: RootOption = None,
    helm: HelmOption = None,
    kube_context: ContextOption = None,
    timeout: TimeoutOption = "10m",
) -> None:
    """Uninstall the selected releases, dependents first."""
    with deploy_errors():
        target = _target(root, env, None, helm, kube_context)
        releases = target.releases(selector or [])
        names = ", ".join(r.name for r in releases)
        if not yes and not typer.confirm(f"uninstall {names} from environment {env}?"):
            raise typer.Exit(1)
        removed = apply.destroy(
            target, releases, lambda _, r: console.print(f"removing {r.name}"), timeout=timeout
        )
    console.print(f"removed {len(removed)} release(s)" + (f": {', '.join(removed)}" if removed else ""))


# ---- checks and air gap --------------------------------------------------------------------------------


@deploy_app.command()
def check(
    env: EnvOption,
    kube_version: Annotated[
        str | None, typer.Option(help="Kubernetes version (default: kubernetes.version).")
    ] = None,
    driver: Annotated[str | None, typer.Option(help="NVIDIA driver (default: gpu.driverVersion).")] = None,
    gpu_operator: Annotated[
        str | None, typer.Option(help="GPU Operator version (default: stack.yaml).")
    ] = None,
    root: RootOption = None,
) -> None:
    """The compatibility matrix (Kubernetes, GPU Operator, driver, DCGM) and default passwords."""
    with deploy_errors():
        base = find_root(root)
        findings = compat.check_environment(
            load_stack(base),
            load_environment(base, env),
            kube=kube_version,
            driver=driver,
            gpu_operator=gpu_operator,
        )
    marks = {
        compat.Level.OK: "[green]ok   [/]",
        compat.Level.WARNING: "[yellow]warn [/]",
        compat.Level.ERROR: "[red]error[/]",
    }
    out_console.print(f"environment {env}")
    for finding in findings:
        where = f" [dim]({_relative(finding.source)})[/]" if finding.source else ""
        out_console.print(f"  {marks[finding.level]} {finding.subject}: {finding.message}{where}")
    errors = [f for f in findings if f.level is compat.Level.ERROR]
    if errors:
        raise CliError(f"{len(errors)} problem(s) in environment {env}", exit_code=1)


@deploy_app.command("bundle")
def bundle_command(
    env: EnvOption,
    out: Annotated[Path, typer.Option("--out", help="Bundle directory.")],
    selector: SelectorOption = None,
    charts: ChartsOption = None,
    no_charts: Annotated[
        bool, typer.Option("--no-charts", help="Only the manifest, no chart archives.")
    ] = False,
    root: RootOption = None,
    helm: HelmOption = None,
) -> None:
    """Every image (found in the rendered manifests) and chart the environment needs, as a manifest."""
    with deploy_errors():
        target = _target(root, env, charts, helm, None)
        rendered = _render_with_progress(target, selector or [])
        manifest = bundle.bundle_manifest(env, target.kube_version, rendered)
        bundle.write_bundle(out, manifest)
        archives = [] if no_charts else bundle.package_charts(target.helm, rendered, out)
    console.print(
        f"wrote {out / 'bundle.yaml'}: {len(manifest['images'])} images, {len(manifest['charts'])} charts"
    )
    for archive in archives:
        console.print(f"  {archive}")


@deploy_app.command("preflight")
def preflight_command(
    env: EnvOption,
    registry: Annotated[
        str | None, typer.Option(help="Offline registry [scheme://]HOST:PORT (default: offline.registry).")
    ] = None,
    chart_repo: Annotated[
        str | None, typer.Option(help="Offline chart repository URL (default: from the environment).")
    ] = None,
    selector: SelectorOption = None,
    charts: ChartsOption = None,
    username: Annotated[str | None, typer.Option(envvar="ASTRAGO_REGISTRY_USERNAME")] = None,
    password: Annotated[str | None, typer.Option(envvar="ASTRAGO_REGISTRY_PASSWORD")] = None,
    root: RootOption = None,
    helm: HelmOption = None,
) -> None:
    """Check that every image is in the offline registry and every chart in the offline chart repository."""
    with deploy_errors():
        target = _target(root, env, charts, helm, None)
        address = registry or str(target.environment.values.get("offline", {}).get("registry") or "")
        if not address:
            raise CliError(
                "no registry to check", exit_code=2, hint="pass --registry HOST:PORT or set offline.registry"
            )
        with preflight.Registry(address, username=username, password=password) as client:
            rendered = _render_with_progress(target, selector or [])
            images = bundle.collect_images(rendered)
            image_checks = preflight.check_images(client, images)
        # A local chart directory replaces the environment's chart repository, as it does for render.
        repo = chart_repo or (None if charts else target.sources.chart_repo)
        chart_checks = preflight.check_charts(rendered, chart_repo=repo, charts_dir=charts)
    missing_images = [c for c in image_checks if not c.present]
    missing_charts = [c for c in chart_checks if not c.present]
    out_console.print(
        f"{len(image_checks) - len(missing_images)}/{len(image_checks)} images present in {address}"
    )
    for item in missing_images:
        out_console.print(f"[red]missing[/] {item.mirrored} ({item.detail})")
        for pin in item.image.pins:
            out_console.print(f"    pinned by {pin.release}: {pin.key} ({_relative(pin.source)})")
        if not item.image.pins:
            out_console.print(f"    set by the chart templates of {', '.join(item.image.releases)}")
    if chart_checks:
        found = len(chart_checks) - len(missing_charts)
        out_console.print(f"{found}/{len(chart_checks)} charts present in {repo or charts}")
    for chart in missing_charts:
        out_console.print(f"missing chart {chart.chart} {chart.version} (release {chart.release})")
    if missing_images or missing_charts:
        raise CliError(
            f"{len(missing_images)} image(s), {len(missing_charts)} chart(s) missing: the install would fail",
            hint="push them (see `astrago deploy bundle`) or pin the versions the offline registry holds",
        )


# ---- GitOps and inventory -------------------------------------------------------------------------------


@deploy_app.command("set-image")
def set_image(
    env: EnvOption,
    assignments: Annotated[list[str], typer.Argument(help="COMPONENT=TAG, e.g. core=1.0.80 batch=1.0.80")],
    root: RootOption = None,
) -> None:
    """Bump image tags in the environment's values.yaml in place, keeping comments (the CI's GitOps step)."""
    with deploy_errors():
        path, changes = setimage.set_image_tags(find_root(root), env, assignments)
    for change in changes:
        console.print(f"{change.key}: {change.old} → {change.new}")
    console.print(f"updated {path}" if changes else f"{path} already pins those tags")


@deploy_app.command("gitops")
def gitops_command(
    env: EnvOption,
    out: Annotated[Path, typer.Option("--out", help="Directory for the Flux manifests.")],
    root: RootOption = None,
) -> None:
    """Flux sources and HelmReleases that track the environment (secrets in a separate, uncommitted file)."""
    with deploy_errors():
        base = find_root(root)
        manifests = gitops.flux_manifests(load_stack(base), load_environment(base, env))
        written = gitops.write_flux(out, manifests)
    for path in written:
        console.print(f"wrote {path}")
    console.print(
        f"[yellow]{out / 'secret-values.yaml'} holds passwords: apply it with kubectl, do not commit it[/]"
    )


@deploy_app.command("inventory")
def inventory_command(
    nodes: Annotated[Path, typer.Option("--nodes", help="Node list (name, address, roles, gpu).")],
    out: Annotated[Path, typer.Option("--out", help="hosts.yaml to write (or a directory).")] = Path(
        "hosts.yaml"
    ),
) -> None:
    """A kubespray inventory (hosts.yaml) from a node list."""
    with deploy_errors():
        path = inventory.write_inventory(nodes, out)
    console.print(f"wrote {path}")
