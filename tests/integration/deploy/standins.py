"""Stand-ins for the third-party charts of deploy/stack.yaml: no chart can be downloaded here, so each is
built with the real chart's name and version, the values keys our templates set (in the real chart's
layout) and Deployments running the real chart's images, composed from those keys as the real chart does.
A stand-in is only as strict as its defaults: a key our template sets that the real chart lacks would pass
here, which is why the defaults below follow the real charts' values.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Go template expressions that compose an image the way each chart does.
REPO_TAG = "{{{{ .Values.{0}.repository }}}}:{{{{ .Values.{0}.tag }}}}"
NVIDIA = "{{{{ .Values.{0}.repository }}}}/{{{{ .Values.{0}.image }}}}:{{{{ .Values.{0}.version }}}}"
GLOBAL_REGISTRY = '{{{{ .Values.global.imageRegistry | default "{1}" }}}}/{0}'


@dataclass(frozen=True)
class StandIn:
    name: str
    version: str
    app_version: str
    values: dict[str, Any]
    # container name → image expression
    containers: dict[str, str]
    extra_templates: str = ""  # other objects the real chart renders from the values we set


def _nvidia(repository: str, image: str, version: str) -> dict[str, str]:
    return {"repository": repository, "image": image, "version": version}


STAND_INS = (
    StandIn(
        "csi-driver-nfs",
        "v4.7.0",
        "v4.7.0",
        {
            "image": {
                "nfs": {"repository": "registry.k8s.io/sig-storage/nfsplugin", "tag": "v4.7.0"},
                "csiProvisioner": {
                    "repository": "registry.k8s.io/sig-storage/csi-provisioner",
                    "tag": "v4.0.0",
                },
                "livenessProbe": {
                    "repository": "registry.k8s.io/sig-storage/livenessprobe",
                    "tag": "v2.12.0",
                },
                "nodeDriverRegistrar": {
                    "repository": "registry.k8s.io/sig-storage/csi-node-driver-registrar",
                    "tag": "v2.10.0",
                },
            },
            "storageClass": {
                "create": False,
                "name": "nfs-csi",
                "annotations": {},
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
                "parameters": {},
            },
        },
        {
            "nfs": REPO_TAG.format("image.nfs"),
            "csi-provisioner": REPO_TAG.format("image.csiProvisioner"),
            "liveness-probe": REPO_TAG.format("image.livenessProbe"),
            "node-driver-registrar": REPO_TAG.format("image.nodeDriverRegistrar"),
        },
    ),
    StandIn(
        "gpu-operator",
        "v24.9.2",
        "v24.9.2",
        {
            "operator": {**_nvidia("nvcr.io/nvidia", "gpu-operator", "v24.9.2"), "defaultRuntime": "docker"},
            "validator": _nvidia("nvcr.io/nvidia/cloud-native", "gpu-operator-validator", "v24.9.2"),
            "driver": {**_nvidia("nvcr.io/nvidia", "driver", "550.127.08"), "enabled": True},
            "toolkit": _nvidia("nvcr.io/nvidia/k8s", "container-toolkit", "v1.17.0-ubuntu20.04"),
            "devicePlugin": _nvidia("nvcr.io/nvidia", "k8s-device-plugin", "v0.17.0-ubi8"),
            "dcgmExporter": _nvidia("nvcr.io/nvidia/k8s", "dcgm-exporter", "3.3.8-3.6.0-ubuntu22.04"),
            "gfd": _nvidia("nvcr.io/nvidia", "k8s-device-plugin", "v0.17.0-ubi8"),
            "migManager": _nvidia("nvcr.io/nvidia/cloud-native", "k8s-mig-manager", "v0.10.0-ubuntu20.04"),
        },
        {
            "operator": NVIDIA.format("operator"),
            "validator": NVIDIA.format("validator"),
            "toolkit": NVIDIA.format("toolkit"),
            "device-plugin": NVIDIA.format("devicePlugin"),
            "dcgm-exporter": NVIDIA.format("dcgmExporter"),
            "mig-manager": NVIDIA.format("migManager"),
        },
    ),
    StandIn(
        "kube-prometheus-stack",
        "55.4.0",
        "v0.70.0",
        {
            "global": {"imageRegistry": ""},
            "prometheus": {
                "prometheusSpec": {
                    "retention": "10d",
                    "serviceMonitorSelectorNilUsesHelmValues": True,
                    "ruleSelectorNilUsesHelmValues": True,
                    "storageSpec": {},
                }
            },
            "grafana": {
                "adminPassword": "prom-operator",
                "service": {"type": "ClusterIP", "nodePort": None},
                "sidecar": {"dashboards": {"enabled": True, "searchNamespace": None}},
            },
        },
        {
            "prometheus-operator": GLOBAL_REGISTRY.format(
                "prometheus-operator/prometheus-operator:v0.70.0", "quay.io"
            ),
            "prometheus": GLOBAL_REGISTRY.format("prometheus/prometheus:v2.48.1", "quay.io"),
            "grafana": GLOBAL_REGISTRY.format("grafana/grafana:10.2.2", "docker.io"),
        },
    ),
    StandIn(
        "loki-stack",
        "2.10.2",
        "v2.9.3",
        {
            "loki": {
                "image": {"repository": "grafana/loki", "tag": "2.9.3"},
                "persistence": {"enabled": False, "storageClassName": None, "size": "10Gi"},
            },
            "promtail": {"image": {"registry": "docker.io", "repository": "grafana/promtail", "tag": ""}},
        },
        {
            "loki": REPO_TAG.format("loki.image"),
            "promtail": "{{ .Values.promtail.image.registry }}/{{ .Values.promtail.image.repository }}"
            ':{{ .Values.promtail.image.tag | default "2.9.3" }}',
        },
    ),
    StandIn(
        "keycloak",
        "17.3.5",
        "22.0.5",
        {
            "global": {"imageRegistry": ""},
            "image": {
                "registry": "docker.io",
                "repository": "bitnami/keycloak",
                "tag": "22.0.5-debian-11-r0",
            },
            "auth": {"adminUser": "user", "adminPassword": ""},
            "service": {"type": "ClusterIP", "nodePorts": {"http": "", "https": ""}},
            "postgresql": {"enabled": True, "primary": {"persistence": {"storageClass": ""}}},
            "keycloakConfigCli": {
                "enabled": False,
                "image": {
                    "registry": "docker.io",
                    "repository": "bitnami/keycloak-config-cli",
                    "tag": "5.9.0-debian-11-r1",
                },
                "configuration": {},
            },
        },
        {
            "keycloak": "{{ .Values.global.imageRegistry | default .Values.image.registry }}/"
            "{{ .Values.image.repository }}:{{ .Values.image.tag }}",
            "postgresql": GLOBAL_REGISTRY.format("bitnami/postgresql:16.1.0-debian-11-r15", "docker.io"),
            "keycloak-config-cli": "{{ .Values.global.imageRegistry"
            " | default .Values.keycloakConfigCli.image.registry }}/"
            "{{ .Values.keycloakConfigCli.image.repository }}:{{ .Values.keycloakConfigCli.image.tag }}",
        },
        # The real chart mounts each `configuration` file from this ConfigMap into its config-cli Job.
        extra_templates="""\
{{- if .Values.keycloakConfigCli.enabled }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-keycloak-config-cli-configmap
data:
  {{- range $file, $content := .Values.keycloakConfigCli.configuration }}
  {{ $file }}: {{ $content | quote }}
  {{- end }}
{{- end }}
""",
    ),
    StandIn(
        "mpi-operator",
        "0.1.0",
        "1.16.0",
        {"image": {"repository": "mpioperator/mpi-operator", "tag": "0.5.0"}},
        {"mpi-operator": REPO_TAG.format("image")},
    ),
    StandIn(
        "flux2",
        "2.13.0",
        "2.3.0",
        {
            **{
                controller: {"create": True, "image": f"ghcr.io/fluxcd/{image}", "tag": tag}
                for controller, image, tag in (
                    ("helmController", "helm-controller", "v1.0.1"),
                    ("kustomizeController", "kustomize-controller", "v1.3.0"),
                    ("sourceController", "source-controller", "v1.3.0"),
                    ("notificationController", "notification-controller", "v1.3.0"),
                )
            },
            "imageAutomationController": {"create": True},
            "imageReflectionController": {"create": True},
        },
        {
            name: f"{{{{ .Values.{key}.image }}}}:{{{{ .Values.{key}.tag }}}}"
            for name, key in (
                ("helm-controller", "helmController"),
                ("kustomize-controller", "kustomizeController"),
                ("source-controller", "sourceController"),
                ("notification-controller", "notificationController"),
            )
        },
    ),
    StandIn(
        "harbor",
        "1.15.1",
        "2.11.1",
        {
            "expose": {
                "type": "ingress",
                "tls": {"enabled": True},
                "nodePort": {"ports": {"http": {"port": 80, "nodePort": 30002}}},
            },
            "externalURL": "https://core.harbor.domain",
            "harborAdminPassword": "Harbor12345",
            "persistence": {
                "persistentVolumeClaim": {
                    "registry": {"storageClass": "", "size": "5Gi"},
                    "database": {"storageClass": "", "size": "1Gi"},
                    "redis": {"storageClass": "", "size": "1Gi"},
                }
            },
            "core": {"image": {"repository": "goharbor/harbor-core", "tag": "v2.11.1"}},
            "registry": {"registry": {"image": {"repository": "goharbor/registry-photon", "tag": "v2.11.1"}}},
        },
        {
            "core": REPO_TAG.format("core.image"),
            "registry": REPO_TAG.format("registry.registry.image"),
        },
    ),
)


DEPLOYMENT = """\
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{ .Release.Name }}}}-{container}
  labels:
    app.kubernetes.io/name: {chart}
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {chart}
      app.kubernetes.io/component: {container}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {chart}
        app.kubernetes.io/component: {container}
    spec:
      containers:
        - name: {container}
          image: "{image}"
"""


def build_stand_in(stand_in: StandIn, directory: Path) -> Path:
    chart = directory / stand_in.name
    (chart / "templates").mkdir(parents=True)
    meta = {
        "apiVersion": "v2",
        "name": stand_in.name,
        "version": stand_in.version,
        "appVersion": stand_in.app_version,
        "description": f"stand-in for the {stand_in.name} chart in tests",
    }
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (chart / "values.yaml").write_text(yaml.safe_dump(stand_in.values, sort_keys=False))
    templates = "".join(
        DEPLOYMENT.format(chart=stand_in.name, container=name, image=image)
        for name, image in stand_in.containers.items()
    )
    (chart / "templates" / "workloads.yaml").write_text(templates + stand_in.extra_templates)
    return chart


def build_stand_ins(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for stand_in in STAND_INS:
        build_stand_in(stand_in, directory)
    return directory
