"""The chart's network walls, checked on the objects the real helm renders: which connections between the
platform's pods, workload pods and the outside the NetworkPolicies allow, evaluated by the Kubernetes rules
(a connection needs the egress of its source and the ingress of its destination to allow it; a pod that
no policy of a direction selects is open in that direction). No cluster runs here, so the rules are
evaluated by the small interpreter below, which implements podSelector, namespaceSelector, ipBlock and
ports as `networking.k8s.io/v1` defines them."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helm import REPO_ROOT

NAMESPACE = "astrago"
RELEASE = "astrago"


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    ip: str


@dataclass(frozen=True)
class External:
    """A client or server outside the cluster."""

    name: str
    ip: str
    namespace: str = ""
    labels: dict[str, str] = field(default_factory=dict)


Endpoint = Pod | External


def role(name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "astrago",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": name,
    }


CORE = Pod("core", NAMESPACE, role("core"), "10.233.64.10")
BATCH = Pod("batch", NAMESPACE, role("batch"), "10.233.64.11")
DATABASE = Pod("database", NAMESPACE, role("database"), "10.233.64.12")
MONITOR = Pod("monitor", NAMESPACE, role("monitor"), "10.233.64.13")
JOB = Pod("job", NAMESPACE, {"astrago.io/workload": "train-1"}, "10.233.64.20")
OTHER_JOB = Pod("other-job", NAMESPACE, {"astrago.io/workload": "train-2"}, "10.233.64.21")
DNS = Pod("dns", "kube-system", {"k8s-app": "kube-dns"}, "10.233.64.2")
INGRESS = Pod("ingress-nginx", "ingress-nginx", {"app": "ingress-nginx"}, "10.233.64.3")
PROMETHEUS = Pod("prometheus", "monitoring", {"app": "prometheus"}, "10.233.64.4")
KEYCLOAK = Pod("keycloak", "keycloak", {"app": "keycloak"}, "10.233.64.5")
API_SERVICE_IP = External("a Service's cluster IP (e.g. Keycloak's admin side)", "10.233.0.40")
INTERNET = External("a dataset mirror outside the cluster", "203.0.113.7")
USER = External("a user's browser (NodePort)", "198.51.100.9")


def rendered_policies(helm: Path, *settings: str) -> list[dict[str, Any]]:
    args = [str(helm), "template", RELEASE, str(REPO_ROOT / "charts/astrago"), "-n", NAMESPACE]
    for setting in settings:
        args += ["--set", setting]
    output = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc and doc["kind"] == "NetworkPolicy"]


def labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        ok = {
            "Exists": present,
            "DoesNotExist": not present,
            "In": present and labels[key] in values,
            "NotIn": not present or labels[key] not in values,
        }[operator]
        if not ok:
            return False
    return True


def namespace_labels(endpoint: Endpoint) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": endpoint.namespace}


def peer_matches(peer: dict[str, Any], policy_namespace: str, endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(endpoint.ip)
        block = peer["ipBlock"]
        inside = address in ipaddress.ip_network(block["cidr"])
        excluded = any(address in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
        return inside and not excluded
    if isinstance(endpoint, External):
        return False  # selectors select pods only
    if "namespaceSelector" in peer:
        if not labels_match(peer["namespaceSelector"], namespace_labels(endpoint)):
            return False
    elif endpoint.namespace != policy_namespace:
        return False
    return labels_match(peer.get("podSelector", {}), endpoint.labels)


def port_matches(rule: dict[str, Any], port: int) -> bool:
    ports = rule.get("ports")
    return not ports or any(entry.get("port") in (None, port) for entry in ports)


def direction_allows(
    policies: list[dict[str, Any]], subject: Endpoint, peer: Endpoint, port: int, direction: str
) -> bool:
    """Whether the policies selecting `subject` let traffic in `direction` (Ingress/Egress) with `peer`."""
    if isinstance(subject, External):
        return True  # outside the cluster: no NetworkPolicy applies
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        policy
        for policy in policies
        if policy["metadata"]["namespace"] == subject.namespace
        and labels_match(policy["spec"]["podSelector"], subject.labels)
        and direction in policy["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            matched = not peers or any(
                peer_matches(entry, policy["metadata"]["namespace"], peer) for entry in peers
            )
            if matched and port_matches(rule, port):
                return True
    return False


def allowed(policies: list[dict[str, Any]], source: Endpoint, destination: Endpoint, port: int) -> bool:
    return direction_allows(policies, source, destination, port, "Egress") and direction_allows(
        policies, destination, source, port, "Ingress"
    )


# (source, destination, port, allowed)
CONNECTIONS = [
    # a workload reaches nothing of the platform...
    (JOB, DATABASE, 5432, False),
    (JOB, CORE, 8080, False),
    (JOB, BATCH, 8080, False),
    (JOB, MONITOR, 9835, False),
    (JOB, KEYCLOAK, 8080, False),
    (JOB, KEYCLOAK, 9000, False),
    (JOB, API_SERVICE_IP, 443, False),
    # ...but its DNS, other replicas/workloads, and the world outside the cluster
    (JOB, DNS, 53, True),
    (JOB, OTHER_JOB, 29500, True),
    (JOB, INTERNET, 443, True),
    # the core's /proxy gateway reaches workloads; nothing else of the platform needs to
    (CORE, JOB, 8888, True),
    (DATABASE, JOB, 8888, False),
    (INGRESS, JOB, 8888, False),
    # the platform's pods accept only what they serve, from whom they serve it
    (CORE, DATABASE, 5432, True),
    (BATCH, DATABASE, 5432, True),
    (MONITOR, DATABASE, 5432, False),
    (CORE, DATABASE, 22, False),
    (INGRESS, CORE, 8080, True),
    (USER, CORE, 8080, True),
    (PROMETHEUS, CORE, 8080, True),
    (INGRESS, CORE, 5432, False),
    (PROMETHEUS, BATCH, 8080, True),
    (INGRESS, BATCH, 8080, False),
    (PROMETHEUS, MONITOR, 9835, True),
    (USER, MONITOR, 9835, False),
]


@pytest.mark.parametrize(
    ("source", "destination", "port", "expected"),
    CONNECTIONS,
    ids=[f"{s.name}->{d.name}:{p}" for s, d, p, _ in CONNECTIONS],
)
def test_rendered_policies_allow_and_deny_the_right_connections(
    default_policies: list[dict[str, Any]], source: Endpoint, destination: Endpoint, port: int, expected: bool
) -> None:
    assert allowed(default_policies, source, destination, port) is expected


@pytest.fixture(scope="module")
def default_policies(helm_path: Path) -> list[dict[str, Any]]:
    return rendered_policies(helm_path)


def test_workloads_kept_inside_the_cluster_when_asked(helm_path: Path) -> None:
    policies = rendered_policies(helm_path, "networkPolicy.workloadEgress.outsideCluster=false")
    assert not allowed(policies, JOB, INTERNET, 443)
    assert allowed(policies, JOB, DNS, 53)


def test_walls_can_be_switched_off_for_clusters_without_a_policy_engine(helm_path: Path) -> None:
    assert rendered_policies(helm_path, "networkPolicy.enabled=false") == []


def test_ingress_serves_console_and_api_over_tls_with_a_cert_manager_secret(
    helm_path: Path, tmp_path: Path
) -> None:
    args = [str(helm_path), "template", RELEASE, str(REPO_ROOT / "charts/astrago"), "-n", NAMESPACE]
    args += ["--set", "ingress.enabled=true", "--set", "ingress.host=gpu.example.org"]
    args += ["--set", "ingress.annotations.cert-manager\\.io/cluster-issuer=internal-ca"]
    rendered = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    [ingress] = [doc for doc in yaml.safe_load_all(rendered) if doc and doc["kind"] == "Ingress"]
    assert ingress["spec"]["tls"] == [{"hosts": ["gpu.example.org"], "secretName": "astrago-tls"}]
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "internal-ca"}
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    services = [doc for doc in yaml.safe_load_all(rendered) if doc and doc["kind"] == "Service"]
    assert backend["name"] in {service["metadata"]["name"] for service in services}
    out = tmp_path / "rendered.yaml"
    out.write_text(rendered)
    validate = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run(
        [str(validate), "--strict", "--kubernetes-version", "1.28.0", "--quiet", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
