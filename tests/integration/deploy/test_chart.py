"""charts/astrago and the whole stack rendered by the real helm 3, validated against Kubernetes 1.28."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.deploy.cli import astrago
from tests.support.helm import REPO_ROOT

ENVIRONMENTS = ("prod", "dev", "dev2", "stage", "astrago")
NEEDS_INIT = {"prod", "stage", "astrago"}


def test_helm_lint_passes_strict(helm_path: Path) -> None:
    result = subprocess.run(
        [str(helm_path), "lint", "--strict", str(REPO_ROOT / "charts/astrago")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def init(root: Path, env: str) -> None:
    outcome = astrago(
        "deploy", "env", "init", "-e", env, "--root", str(root),
        "--external-ip", "10.61.3.12", "--nfs-server", "10.61.3.2", "--nfs-path", "/nfs-data/astrago",
        "--registry", "10.61.3.8:35000" if env == "astrago" else "",
        "--http-server", "http://10.61.3.8" if env == "astrago" else "",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.stderr + outcome.message


def test_every_environment_renders_valid_kubernetes_128(
    helm_path: Path, stand_in_charts: Path, deploy_root: Path, tmp_path: Path
) -> None:
    files: list[str] = []
    for env in ENVIRONMENTS:
        if env in NEEDS_INIT:
            init(deploy_root, env)
        out = tmp_path / "rendered" / env
        outcome = astrago(
            "deploy",
            "render",
            "-e",
            env,
            "--root",
            str(deploy_root),
            "--charts",
            str(stand_in_charts),
            "--out",
            str(out),
        )
        assert outcome.exit_code == 0, outcome.message
        files += sorted(str(path) for path in out.glob("*.yaml"))
    validate = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run(
        [str(validate), "--strict", "--kubernetes-version", "1.28.0", "--quiet", *files],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_render_writes_one_file_per_release_in_dependency_order(
    helm_path: Path, stand_in_charts: Path, deploy_root: Path, tmp_path: Path
) -> None:
    outcome = astrago(
        "deploy", "render", "-e", "dev", "--root", str(deploy_root), "--charts", str(stand_in_charts),
        "--out", str(tmp_path),
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.message
    names = [path.stem for path in sorted(tmp_path.glob("*.yaml"))]
    # dev switches Harbor off; the rest follows the seeds' install order.
    assert names == [
        "01-csi-driver-nfs", "02-gpu-operator", "03-prometheus", "04-loki-stack", "05-keycloak",
        "06-mpi-operator", "07-flux", "08-astrago",
    ]  # fmt: skip


def _documents(path: Path) -> list[dict[str, object]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_astrago_chart_runs_the_platform_roles(
    helm_path: Path, stand_in_charts: Path, deploy_root: Path, tmp_path: Path
) -> None:
    init(deploy_root, "prod")
    outcome = astrago(
        "deploy",
        "render",
        "-e",
        "prod",
        "-l",
        "app=astrago",
        "--root",
        str(deploy_root),
        "--out",
        str(tmp_path),
    )
    assert outcome.exit_code == 0, outcome.message
    documents = _documents(tmp_path / "01-astrago.yaml")
    by_kind_name = {(d["kind"], d["metadata"]["name"]): d for d in documents}  # type: ignore[index]
    core = by_kind_name[("Deployment", "astrago-core")]["spec"]["template"]["spec"]  # type: ignore[index]
    assert core["containers"][0]["args"][:1] == ["server"]
    assert "api" in core["containers"][0]["args"]
    env = {item["name"]: item for item in core["containers"][0]["env"]}
    assert env["ASTRAGO_BACKEND"]["value"] == "kubernetes"
    assert env["ASTRAGO_OIDC_ISSUER"]["value"] == "http://10.61.3.12:30001/realms/astrago"
    assert env["ASTRAGO_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "ASTRAGO_DATABASE_URL"
    # uploads land on the share that workloads mount their volumes from
    claim = by_kind_name[("PersistentVolumeClaim", "astrago-volumes")]["spec"]  # type: ignore[index]
    assert (claim["accessModes"], claim["storageClassName"]) == (["ReadWriteMany"], "astrago-nfs-csi")
    mounts = {m["name"]: m["mountPath"] for m in core["containers"][0]["volumeMounts"]}
    assert mounts["volumes"] == env["ASTRAGO_VOLUMES_DIR"]["value"]
    pod_volumes = {v["name"]: v for v in core["volumes"]}
    claim_name = env["ASTRAGO_VOLUMES_CLAIM"]["value"]
    assert pod_volumes["volumes"]["persistentVolumeClaim"] == {"claimName": claim_name}
    # Pods fetch code bundles from the core Service, signed with a key every server process shares,
    # from a volume every core replica shares.
    assert env["ASTRAGO_INTERNAL_URL"]["value"] == "http://astrago.astrago.svc:8080"
    assert env["ASTRAGO_CODE_CREDENTIAL_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "astrago-env"
    batch_env = by_kind_name[("Deployment", "astrago-batch")]["spec"]["template"]["spec"]["containers"][0][
        "env"
    ]  # type: ignore[index]
    assert {"ASTRAGO_INTERNAL_URL", "ASTRAGO_CODE_CREDENTIAL_KEY"} <= {item["name"] for item in batch_env}
    code_claim = by_kind_name[("PersistentVolumeClaim", "astrago-code")]["spec"]  # type: ignore[index]
    assert code_claim["accessModes"] == ["ReadWriteMany"]
    assert {"name": "code", "mountPath": "/var/lib/astrago/code"} in core["containers"][0]["volumeMounts"]
    batch = by_kind_name[("Deployment", "astrago-batch")]["spec"]  # type: ignore[index]
    assert batch["strategy"]["type"] == "Recreate"
    assert "controllers" in batch["template"]["spec"]["containers"][0]["args"]
    service = by_kind_name[("Service", "astrago")]["spec"]  # type: ignore[index]
    assert service["type"] == "NodePort"
    assert service["ports"][0]["nodePort"] == 30080
    monitor = by_kind_name[("DaemonSet", "astrago-monitor")]["spec"]["template"]["spec"]  # type: ignore[index]
    assert monitor["hostPID"] is True
    assert monitor["containers"][0]["volumeMounts"][0] == {
        "name": "host-proc",
        "mountPath": "/host/proc",
        "readOnly": True,
    }
    lease_rules = by_kind_name[("Role", "astrago-leader-election")]["rules"]  # type: ignore[index]
    assert lease_rules[0]["resources"] == ["leases"]
    workload_rules = by_kind_name[("Role", "astrago-workloads")]["rules"]  # type: ignore[index]
    resources = {r for rule in workload_rules for r in rule["resources"]}
    assert {"pods", "pods/log", "pods/exec", "jobs", "mpijobs", "deployments"} <= resources
    assert ("StatefulSet", "astrago-postgresql") in by_kind_name
    # the server reads GPU telemetry and GPU health back from the stack's Prometheus, where every GPU
    # exporter's series carry the node the exporter runs on (per-GPU rows need it)
    stack_prometheus = "http://prometheus-operated.astrago.svc:9090"
    for name in ("ASTRAGO_TELEMETRY_PROMETHEUS_URL", "ASTRAGO_GPU_HEALTH_PROMETHEUS_URL"):
        assert env[name]["value"] == stack_prometheus
        assert {"name": name, "value": stack_prometheus} in batch_env
    scrape = by_kind_name[("ServiceMonitor", "astrago")]["spec"]["endpoints"]  # type: ignore[index]
    (exporter,) = [e for e in scrape if e["port"] == "metrics"]
    assert {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"} in exporter[
        "relabelings"
    ]
    assert ("ServiceMonitor", "astrago") in by_kind_name
    rules = by_kind_name[("PrometheusRule", "astrago")]["spec"]["groups"]  # type: ignore[index]
    alerts = {rule["alert"] for group in rules for rule in group["rules"] if "alert" in rule}
    assert {
        "AstragoGpuIdle",
        "AstragoGpuExporterDown",
        "AstragoQueueTooLong",
        "AstragoGpuUnhealthy",
    } <= alerts
    recorded = {rule["record"] for group in rules for rule in group["rules"] if "record" in rule}
    assert {"astrago:workspace_gpu_hours:1h", "astrago:workload_gpu_utilization:avg"} <= recorded
    dashboards = by_kind_name[("ConfigMap", "astrago-dashboards")]["data"]  # type: ignore[index]
    assert set(dashboards) == {  # type: ignore[arg-type]
        "astrago-cluster.json",
        "astrago-gpu-sessions.json",
        "astrago-workloads.json",
        "astrago-workspaces.json",
    }
    sessions = dashboards["astrago-gpu-sessions.json"]  # type: ignore[index]
    for metric in ("gpu_sessions", "gpu_total_sessions", "gpu_process_utilization", "gpu_process_info"):
        assert metric in sessions
    assert json.loads(dashboards["astrago-cluster.json"])["uid"] == "astrago-cluster"  # type: ignore[index]
    secret = by_kind_name[("Secret", "astrago-env")]["stringData"]  # type: ignore[index]
    secrets = yaml.safe_load((deploy_root / "environments/prod/secrets.yaml").read_text())
    assert secret["ASTRAGO_ADMIN_PASSWORD"] == secrets["astrago"]["adminPassword"]
    assert len(secret["ASTRAGO_CODE_CREDENTIAL_KEY"]) == 32
    # the gateway's links and cookies are signed with one key, so any API replica accepts another's
    assert len(secret["ASTRAGO_GATEWAY_KEY"]) == 32
    assert env["ASTRAGO_GATEWAY_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "astrago-env",
        "key": "ASTRAGO_GATEWAY_KEY",
    }


@pytest.mark.parametrize("mode", ["external"])
def test_external_database_drops_the_bundled_one(
    helm_path: Path, deploy_root: Path, tmp_path: Path, mode: str
) -> None:
    values = deploy_root / "environments/dev/values.yaml"
    values.write_text(
        values.read_text().replace(
            "  database:\n    password: astrago\n",
            f"  database:\n    mode: {mode}\n    url: mysql+asyncmy://astrago:pw@mariadb:3306/astrago\n",
        )
    )
    outcome = astrago(
        "deploy",
        "render",
        "-e",
        "dev",
        "-l",
        "app=astrago",
        "--root",
        str(deploy_root),
        "--out",
        str(tmp_path),
    )
    assert outcome.exit_code == 0, outcome.message
    documents = _documents(tmp_path / "01-astrago.yaml")
    assert not [d for d in documents if d["kind"] == "StatefulSet"]
    secret = next(d for d in documents if d["kind"] == "Secret")
    assert secret["stringData"]["ASTRAGO_DATABASE_URL"] == "mysql+asyncmy://astrago:pw@mariadb:3306/astrago"  # type: ignore[index]


def test_alert_rules_pass_promtool(helm_path: Path, tmp_path: Path) -> None:
    """The PrometheusRule groups are a valid rule file for promtool (Debian package prometheus)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: .ci/apt-packages.txt installs the prometheus package")
    rendered = subprocess.run(
        [
            str(helm_path),
            "template",
            "astrago",
            str(REPO_ROOT / "charts/astrago"),
            "-s",
            "templates/prometheusrule.yaml",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": yaml.safe_load(rendered)["spec"]["groups"]}))
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 rules found" in result.stdout  # 6 alerts and 6 recording rules


@pytest.mark.parametrize(
    ("setting", "message"),
    [("core.replica=2", "Additional property replica is not allowed"), ("core.service.nodePort=80", "30000")],
)
def test_chart_schema_refuses_bad_values_for_plain_helm_users(
    helm_path: Path, setting: str, message: str
) -> None:
    """Operators running helm directly, without `astrago deploy`, are protected by values.schema.json."""
    result = subprocess.run(
        [str(helm_path), "template", "astrago", str(REPO_ROOT / "charts/astrago"), "--set", setting],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_keycloak_realm_is_configured_declaratively_and_the_server_points_at_it(
    helm_path: Path, stand_in_charts: Path, deploy_root: Path, tmp_path: Path
) -> None:
    """A fresh install needs no manual Keycloak step: the realm, clients, mappers, admin role and group
    tree come from the stack, with the client secret from the environment's generated secrets."""
    init(deploy_root, "prod")
    documents = []
    for app in ("keycloak", "astrago"):
        out = tmp_path / "rendered" / app
        outcome = astrago(
            "deploy", "render", "-e", "prod", "-l", f"app={app}", "--root", str(deploy_root),
            "--charts", str(stand_in_charts), "--out", str(out),
        )  # fmt: skip
        assert outcome.exit_code == 0, outcome.message
        documents += [doc for path in sorted(out.glob("*.yaml")) for doc in _documents(path)]
    by_kind_name = {(d["kind"], d["metadata"]["name"]): d for d in documents}  # type: ignore[index]
    secrets = yaml.safe_load((deploy_root / "environments/prod/secrets.yaml").read_text())

    config = by_kind_name[("ConfigMap", "keycloak-keycloak-config-cli-configmap")]["data"]  # type: ignore[index]
    realm = json.loads(config["astrago-realm.json"])
    assert realm["realm"] == "astrago"
    assert realm["roles"]["realm"][0]["name"] == "astrago-admin"
    assert [g["name"] for g in realm["groups"][0]["subGroups"][0]["subGroups"]] == [
        "manager",
        "member",
        "viewer",
    ]
    clients = {c["clientId"]: c for c in realm["clients"]}
    web = clients["astrago-client"]
    assert web["secret"] == secrets["keycloak"]["clientSecret"]
    assert len(web["secret"]) >= 16
    assert web["redirectUris"] == ["http://10.61.3.12:30080/api/v1/auth/oidc/callback"]
    assert web["attributes"]["pkce.code.challenge.method"] == "S256"
    mappers = {m["protocolMapper"]: m["config"] for m in web["protocolMappers"]}
    assert mappers["oidc-group-membership-mapper"]["full.path"] == "true"
    assert mappers["oidc-usermodel-realm-role-mapper"]["claim.name"] == "realm_access.roles"
    assert mappers["oidc-audience-mapper"]["included.client.audience"] == "astrago-client"
    cli = clients["astrago-cli"]
    assert cli["publicClient"] is True
    assert cli["attributes"]["oauth2.device.authorization.grant.enabled"] == "true"

    core = by_kind_name[("Deployment", "astrago-core")]["spec"]["template"]["spec"]  # type: ignore[index]
    env = {item["name"]: item for item in core["containers"][0]["env"]}
    assert env["ASTRAGO_OIDC_ISSUER"]["value"] == "http://10.61.3.12:30001/realms/astrago"
    assert env["ASTRAGO_PUBLIC_URL"]["value"] == "http://10.61.3.12:30080"
    assert env["ASTRAGO_OIDC_CLI_CLIENT_ID"]["value"] == "astrago-cli"
    assert json.loads(env["ASTRAGO_OIDC_ADMIN_ROLES"]["value"]) == ["astrago-admin"]
    secret = by_kind_name[("Secret", "astrago-env")]["stringData"]  # type: ignore[index]
    assert secret["ASTRAGO_OIDC_CLIENT_SECRET"] == secrets["keycloak"]["clientSecret"]


def _server_env(helm_path: Path, *settings: str) -> dict[str, str]:
    """The batch (controllers) container's plain-value environment, from `helm template` of the chart."""
    args = [arg for setting in ("database.bundled.enabled=true", *settings) for arg in ("--set", setting)]
    result = subprocess.run(
        [str(helm_path), "template", "astrago", str(REPO_ROOT / "charts/astrago"), *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    (batch,) = [
        d
        for d in yaml.safe_load_all(result.stdout)
        if d and d["kind"] == "Deployment" and "batch" in d["metadata"]["name"]
    ]
    return {
        e["name"]: e["value"]
        for e in batch["spec"]["template"]["spec"]["containers"][0]["env"]
        if "value" in e
    }


def test_the_prometheus_urls_reach_the_server_only_when_given(helm_path: Path) -> None:
    """Plain helm users: without a Prometheus URL the server reads neither telemetry nor GPU health from one
    (admins cordon); health can read another Prometheus than telemetry; a URL without a scheme is refused."""
    names = ("ASTRAGO_TELEMETRY_PROMETHEUS_URL", "ASTRAGO_GPU_HEALTH_PROMETHEUS_URL")
    assert not set(names) & set(_server_env(helm_path))
    env = _server_env(helm_path, "metrics.prometheusUrl=http://prom:9090")
    assert [env[name] for name in names] == ["http://prom:9090", "http://prom:9090"]
    env = _server_env(helm_path, "metrics.healthPrometheusUrl=http://health:9090")
    assert "ASTRAGO_TELEMETRY_PROMETHEUS_URL" not in env
    assert env["ASTRAGO_GPU_HEALTH_PROMETHEUS_URL"] == "http://health:9090"
    refused = subprocess.run(
        [
            str(helm_path),
            "template",
            "astrago",
            str(REPO_ROOT / "charts/astrago"),
            "--set",
            "metrics.prometheusUrl=prom:9090",
        ],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0
    assert "prometheusUrl" in refused.stderr
