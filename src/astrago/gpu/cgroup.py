"""Which container and pod a host process belongs to, from the text of `/proc/<pid>/cgroup`.

Shapes handled (kubelet naming, pkg/kubelet/cm/cgroup_manager_linux.go):
- cgroup v2 `0::/path`, cgroup v1 one `N:controllers:/path` line per hierarchy, and hybrids of both;
- cgroupfs driver `/kubepods[/<qos>]/pod<UID>/<container-id>`;
- systemd driver `/kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<UID_with_underscores>.slice/
  <runtime>-<id>.scope` with runtime `cri-containerd`, `crio` or `docker` (CRI-O's `crio-conmon-` scope holds
  conmon, not the workload, so it names no container);
- paths relative to a private cgroup namespace (`/../..`) and nested kubelets (`kubelet-kubepods-...`).
Guaranteed pods have no QoS level. A process outside any pod gets `pod_uid=None`; nothing is guessed."""

from __future__ import annotations

import re
from dataclasses import dataclass

_POD_UID = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
_CONTAINER = re.compile(r"^(?:(?P<runtime>cri-containerd|crio|docker)-)?(?P<id>[0-9a-f]{64})(?:\.scope)?$")
_RUNTIMES = {"cri-containerd": "containerd", "crio": "cri-o", "docker": "docker"}


@dataclass(frozen=True, slots=True)
class ContainerRef:
    """`runtime` is known only under the systemd driver, where the scope name carries it."""

    pod_uid: str | None
    container_id: str | None
    runtime: str | None = None


NOT_IN_CONTAINER = ContainerRef(None, None, None)


def parse_cgroup_path(path: str) -> ContainerRef | None:
    """The pod and container a single cgroup path names, or `None` when it names neither."""
    pod = _POD_UID.search(path)
    leaf = path.rstrip("/").rsplit("/", 1)[-1]
    container = None if leaf.startswith("crio-conmon-") else _CONTAINER.match(leaf)
    if pod is None and container is None:
        return None
    return ContainerRef(
        pod_uid=pod.group(1).replace("_", "-") if pod else None,
        container_id=container["id"] if container else None,
        runtime=_RUNTIMES.get(container["runtime"] or "") if container else None,
    )


def parse_proc_cgroup(text: str) -> ContainerRef:
    """Prefer the unified (`0::`) line; else the first v1 line that names a pod or a container."""
    unified: ContainerRef | None = None
    legacy: ContainerRef | None = None
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not path:
            continue
        found = parse_cgroup_path(path.strip())
        if found is None:
            continue
        if hierarchy == "0" and controllers == "":
            unified = unified or found
        else:
            legacy = legacy or found
    return unified or legacy or NOT_IN_CONTAINER
