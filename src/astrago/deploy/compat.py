"""`astrago deploy check`: the version compatibility matrix (Kubernetes ↔ GPU Operator ↔ driver ↔ DCGM)
and the seeds' default passwords, which are refused outside the development environments."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from astrago.deploy.environments import Environment
from astrago.deploy.errors import DeployError
from astrago.deploy.stack import Stack
from astrago.deploy.values import render_release_values

GPU_OPERATOR_RELEASE = "gpu-operator"


class Level(enum.StrEnum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Finding:
    level: Level
    subject: str
    message: str
    source: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class Versions:
    kubernetes: str
    gpu_operator: str | None
    driver: str | None
    dcgm_exporter: str | None


@cache
def matrix() -> dict[str, Any]:
    text = resources.files("astrago.deploy").joinpath("compat.yaml").read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def parse_version(text: str, what: str) -> Version:
    try:
        return Version(text.strip().lstrip("v"))
    except InvalidVersion as exc:
        raise DeployError(f"{what} {text!r} is not a version like 1.28.6") from exc


def check_versions(versions: Versions) -> list[Finding]:
    findings: list[Finding] = []
    kube = parse_version(versions.kubernetes, "Kubernetes version")
    if versions.gpu_operator is None:
        return [Finding(Level.OK, "gpu-operator", "not installed in this environment: GPU checks skipped")]
    operators: dict[str, Any] = matrix()["gpuOperator"]
    entry = operators.get(versions.gpu_operator)
    if entry is None:
        known = ", ".join(operators)
        return [
            Finding(
                Level.ERROR, "gpu-operator", f"{versions.gpu_operator} is not in the matrix (known: {known})"
            )
        ]
    supported = SpecifierSet(entry["kubernetes"])
    if kube in supported:
        findings.append(
            Finding(Level.OK, "kubernetes", f"{kube} is supported by GPU Operator {versions.gpu_operator}")
        )
    else:
        findings.append(
            Finding(
                Level.ERROR,
                "kubernetes",
                f"GPU Operator {versions.gpu_operator} needs Kubernetes {entry['kubernetes']}, not {kube}",
            )
        )
    if versions.driver:
        findings.append(_check_driver(versions.driver, versions.gpu_operator, entry))
    if versions.dcgm_exporter:
        findings.append(_check_dcgm(versions.dcgm_exporter, versions.gpu_operator))
    return findings


def _check_driver(driver: str, operator: str, entry: dict[str, Any]) -> Finding:
    branch = driver.split(".", 1)[0]
    if branch not in entry["driverBranches"]:
        branches = ", ".join(entry["driverBranches"])
        return Finding(
            Level.ERROR,
            "driver",
            f"driver {driver} (branch {branch}) is not supported by GPU Operator {operator} ({branches})",
        )
    if driver != entry["verifiedDriver"]:
        return Finding(
            Level.WARNING,
            "driver",
            f"driver {driver} is supported; {entry['verifiedDriver']} is the verified one",
        )
    return Finding(Level.OK, "driver", f"driver {driver} is verified with GPU Operator {operator}")


def _check_dcgm(exporter: str, operator: str) -> Finding:
    dcgm = parse_version(exporter.split("-", 1)[0], "DCGM exporter version")
    minimum = parse_version(matrix()["minimumForDcgm4"], "GPU Operator version")
    if dcgm.major >= 4 and parse_version(operator, "GPU Operator version") < minimum:
        return Finding(
            Level.ERROR, "dcgm", f"DCGM {dcgm} needs GPU Operator {matrix()['minimumForDcgm4']} or newer"
        )
    return Finding(Level.OK, "dcgm", f"DCGM exporter {exporter} fits GPU Operator {operator}")


def check_environment(
    stack: Stack,
    environment: Environment,
    *,
    kube: str | None = None,
    driver: str | None = None,
    gpu_operator: str | None = None,
) -> list[Finding]:
    """Every check of `astrago deploy check`; the arguments override the environment for what-if checks."""
    versions = environment_versions(stack, environment, kube=kube, driver=driver, gpu_operator=gpu_operator)
    return check_versions(versions) + check_passwords(environment)


def environment_versions(
    stack: Stack,
    environment: Environment,
    *,
    kube: str | None = None,
    driver: str | None = None,
    gpu_operator: str | None = None,
) -> Versions:
    """What the environment would install: versions from its values, stack.yaml and the GPU Operator's
    values template (the DCGM exporter)."""
    operator = gpu_operator
    dcgm_exporter = None
    if environment.release_enabled(GPU_OPERATOR_RELEASE):
        release = stack.release(GPU_OPERATOR_RELEASE)
        operator = operator or release.version
        values = render_release_values(stack, environment, release).values
        dcgm_exporter = str((values.get("dcgmExporter") or {}).get("version") or "") or None
    return Versions(
        kubernetes=kube or str(environment.get("kubernetes.version")),
        gpu_operator=operator,
        driver=driver or str(environment.get("gpu.driverVersion")),
        dcgm_exporter=dcgm_exporter,
    )


def check_passwords(environment: Environment) -> list[Finding]:
    data = matrix()
    development = environment.name in data["developmentEnvironments"]
    defaults = set(data["knownDefaultPasswords"])
    findings = []
    for key in data["secretKeys"]:
        value = str(environment.get(key) or "")
        source = str(environment.origin(key) or environment.values_path)
        if not value:
            level = Level.WARNING if development else Level.ERROR
            message = f"is empty; run `astrago deploy env init -e {environment.name}` to generate it"
            findings.append(Finding(level, key, message, source, key))
        elif value in defaults:
            level = Level.WARNING if development else Level.ERROR
            message = "is a published default password" + (
                " (accepted in development environments only)" if development else ""
            )
            findings.append(Finding(level, key, message, source, key))
    if not findings:
        findings.append(Finding(Level.OK, "passwords", "no default or empty passwords"))
    return findings
