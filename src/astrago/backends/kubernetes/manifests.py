"""Kubernetes manifests for each workload kind, built as plain dicts from a LaunchSpec.

job          → Job (an Indexed Job for several replicas)
distributed  → Indexed Job + headless Service (PyTorch DDP: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK),
               or an MPIJob kubeflow.org/v2beta1 (launcher + workers) when `extra["framework"] == "mpi"`
interactive  → Pod + Service exposing its ports (JupyterLab when no image is given)
service      → Deployment + Service (ClusterIP, or NodePort with `extra["expose"] == "nodeport"`)

Pure functions: no I/O, so every manifest can be validated against the Kubernetes schemas in tests.
Placement: the AstraGo scheduler already chose the nodes, so pods are held to exactly those nodes by a
required node affinity on `metadata.name` (node names, unlike the hostname label, are what the scheduler
knows); the kube-scheduler and the device plugin then bind the concrete GPUs on those nodes."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from astrago.backends.base import BackendError, LaunchSpec, ReplicaLaunch
from astrago.backends.kubernetes import naming
from astrago.backends.readiness import readiness_timeout_s
from astrago.domain.enums import WorkloadKind
from astrago.domain.volumes import env_name

Manifest = dict[str, Any]

GPU_RESOURCE = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
DEFAULT_NOTEBOOK_IMAGE = "quay.io/jupyter/base-notebook:python-3.11"
NOTEBOOK_PORT = 8888
DDP_PORT = 29500
DEFAULT_VOLUMES_CLAIM = "astrago-volumes"
DEFAULT_VOLUMES_CLAIM_SIZE = "1Ti"  # NFS provisioners do not enforce it; volumes and quotas do
VOLUMES_POD_VOLUME = "volumes"
MPIJOB_API_VERSION = "kubeflow.org/v2beta1"
# Kubernetes sets this annotation (and, from 1.28, a label) on every pod of an Indexed Job.
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
MPI_WORKER_INDEX_LABEL = "training.kubeflow.org/replica-index"  # the MPI Operator sets it on workers
# An uploaded code bundle is unpacked here by the init container, on an emptyDir each pod has to itself
# (every replica starts from the snapshot; nothing written there reaches the user's files or other pods).
CODE_DIR = "/astrago/code"
CODE_VOLUME = "code"
CODE_FETCHER = "fetch-code"
# The init container's program: download with retries (the API may be rolling), then unpack with the
# "data" filter where the image's Python has it (the server checked the archive at upload as well).
CODE_FETCH_SCRIPT = """\
import os, sys, tarfile, time, urllib.error, urllib.request
url, target = os.environ["ASTRAGO_CODE_URL"], os.environ["ASTRAGO_CODE_DIR"]
headers = {"X-AstraGo-Code-Credential": os.environ["ASTRAGO_CODE_CREDENTIAL"]}
error = None
for attempt in range(6):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
            with tarfile.open(fileobj=response, mode="r|gz") as archive:
                if hasattr(tarfile, "data_filter"):
                    archive.extractall(target, filter="data")
                else:
                    archive.extractall(target)
        print("astrago: code bundle unpacked in", target)
        sys.exit(0)
    except urllib.error.HTTPError as exc:
        if exc.code < 500:
            detail = exc.read()[:500].decode(errors="replace")
            sys.exit(f"astrago: the server refused the code bundle download ({exc.code}): {detail}")
        error = exc
    except (OSError, tarfile.TarError) as exc:
        error = exc
    time.sleep(2**attempt)
sys.exit(f"astrago: could not download the code bundle from {url}: {error}")
"""
_MPI_LAUNCHER_CPU_MILLI = 500
_MPI_LAUNCHER_MEMORY_MIB = 512
# Registries that image references may name; any first path part with a dot or a port is a registry too.
_LOCALHOST = "localhost"


@dataclass(frozen=True, slots=True)
class CodeDownload:
    """Where a workload's pods fetch its code bundle: the archive URL on the API's in-cluster address, the
    credential valid for that bundle and workload only, and the init container's image (None: the
    workload's own, which then needs python3)."""

    url: str
    credential: str
    image: str | None = None


@dataclass(frozen=True, slots=True)
class ManifestOptions:
    namespace: str
    storage_class: str
    image_registry: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    shared_gpu_resource: str = "nvidia.com/gpu.shared"
    # time-slicing replicas per physical GPU on each node (from the inventory); 1 when unknown
    shared_units_per_gpu: dict[str, int] = field(default_factory=dict)
    # every volume is a folder of one ReadWriteMany claim, which the chart also mounts into the server
    volumes_claim: str = DEFAULT_VOLUMES_CLAIM
    code_download: CodeDownload | None = None  # required when the workload runs an uploaded code bundle


@dataclass(frozen=True, slots=True)
class WorkloadManifests:
    """What one workload becomes. `root` owns `dependents` (owner references are added once the root
    exists and has a uid); `volume_claims` (the shared volumes claim, created if missing) outlive it."""

    root: Manifest
    dependents: tuple[Manifest, ...] = ()
    volume_claims: tuple[Manifest, ...] = ()


def build_manifests(spec: LaunchSpec, options: ManifestOptions) -> WorkloadManifests:
    if not spec.replicas:
        raise BackendError(f"workload {spec.workload_id} has no replica placements to start")
    if spec.code_bundle and options.code_download is None:
        raise BackendError(
            f"workload {spec.name!r} runs an uploaded code bundle, but pods cannot reach the API to fetch "
            "it: set internal_url (ASTRAGO_INTERNAL_URL) to the API's in-cluster address"
        )
    claims = (_volumes_claim(options),) if spec.volumes else ()
    if spec.kind is WorkloadKind.JOB:
        return WorkloadManifests(root=_job(spec, options, ddp=False), volume_claims=claims)
    if spec.kind is WorkloadKind.DISTRIBUTED:
        if is_mpi(spec):
            return WorkloadManifests(root=_mpijob(spec, options), volume_claims=claims)
        return WorkloadManifests(
            root=_job(spec, options, ddp=True),
            dependents=(_headless_service(spec, options),),
            volume_claims=claims,
        )
    if spec.kind is WorkloadKind.INTERACTIVE:
        pod = _interactive_pod(spec, options)
        ports = _container_ports(pod["spec"]["containers"][0])
        dependents = (_service(spec, options, ports),) if ports else ()
        return WorkloadManifests(root=pod, dependents=dependents, volume_claims=claims)
    if spec.kind is WorkloadKind.SERVICE:
        deployment = _deployment(spec, options)
        ports = _container_ports(deployment["spec"]["template"]["spec"]["containers"][0])
        dependents = (_service(spec, options, ports),) if ports else ()
        return WorkloadManifests(root=deployment, dependents=dependents, volume_claims=claims)
    raise BackendError(f"the Kubernetes backend cannot run workloads of kind {spec.kind!r}")


def is_mpi(spec: LaunchSpec) -> bool:
    return spec.kind is WorkloadKind.DISTRIBUTED and spec.extra.get("framework", "pytorch").lower() == "mpi"


def with_registry(image: str, registry: str | None) -> str:
    """Point an image at the private registry: `pytorch/pytorch:2.3` → `harbor.local/pytorch/pytorch:2.3`.

    A registry host in the reference (`nvcr.io/nvidia/...`) is replaced, as an offline registry mirrors
    the repository paths; Docker Hub official images gain their implicit `library/` path."""
    if not registry:
        return image
    registry = registry.rstrip("/")
    if image.startswith(registry + "/"):
        return image
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == _LOCALHOST):
        image = rest
    elif not rest:
        image = f"library/{image}"
    return f"{registry}/{image}"


def gpu_limits(replica: ReplicaLaunch, options: ManifestOptions) -> dict[str, str]:
    """The extended resources one replica asks for: whole GPUs, one MIG slice, or time-sliced shares."""
    if replica.mig_profile:
        return {f"{MIG_RESOURCE_PREFIX}{replica.mig_profile}": "1"}
    if 0 < replica.gpu_milli < 1000:
        per_gpu = max(1, options.shared_units_per_gpu.get(replica.node, 1))
        units = max(1, math.ceil(replica.gpu_milli * per_gpu / 1000))
        return {options.shared_gpu_resource: str(units)}
    if replica.gpu_indices:
        return {GPU_RESOURCE: str(len(replica.gpu_indices))}
    return {}


# ---------------------------------------------------------------------------------------------- pieces


def _metadata(spec: LaunchSpec, options: ManifestOptions, role: str, name: str | None = None) -> Manifest:
    return {
        "name": name or naming.object_name(spec.workload_id),
        "namespace": options.namespace,
        "labels": naming.workload_labels(spec.workload_id, spec.workspace, role),
        "annotations": _annotations(spec),
    }


def _annotations(spec: LaunchSpec) -> dict[str, str]:
    annotations = {
        naming.WORKLOAD_ID_ANNOTATION: spec.workload_id,
        naming.WORKLOAD_NAME_ANNOTATION: spec.name,
        naming.KIND_ANNOTATION: _kind_tag(spec),
        naming.REPLICAS_ANNOTATION: str(len(spec.replicas)),
    }
    if spec.ports:
        annotations[naming.READINESS_TIMEOUT_ANNOTATION] = f"{readiness_timeout_s(spec.extra):g}"
    return annotations


def _kind_tag(spec: LaunchSpec) -> str:
    return "distributed-mpi" if is_mpi(spec) else spec.kind.value


def _image(spec: LaunchSpec, options: ManifestOptions) -> str:
    image = spec.image
    if not image:
        if spec.kind is not WorkloadKind.INTERACTIVE:
            raise BackendError(
                f"workload {spec.name!r} has no image: a Kubernetes {spec.kind.value} needs a container image"
            )
        image = DEFAULT_NOTEBOOK_IMAGE
    return with_registry(image, options.image_registry)


def _resources(replica: ReplicaLaunch, options: ManifestOptions) -> Manifest:
    # Requests equal limits: the AstraGo scheduler reserved exactly this much, and equal values give
    # the pod the Guaranteed QoS class, so the kubelet evicts it last under node pressure.
    amounts = {"cpu": f"{max(replica.cpu_milli, 1)}m", "memory": f"{max(replica.memory_mib, 1)}Mi"}
    limits = {**amounts, **gpu_limits(replica, options)}
    return {"requests": dict(limits), "limits": limits}


def _env(spec: LaunchSpec, replica: ReplicaLaunch, replica_index_ref: str | None) -> list[Manifest]:
    """The user's env plus AstraGo's; `replica_index_ref` is a field path holding the replica index
    (Indexed Job, MPI worker), or "" where pods are interchangeable (Deployment) and have none."""
    env: list[Manifest] = [{"name": key, "value": value} for key, value in spec.env]
    env.append({"name": "ASTRAGO_WORKLOAD_ID", "value": spec.workload_id})
    if replica_index_ref:
        env.append({"name": "ASTRAGO_REPLICA", "valueFrom": {"fieldRef": {"fieldPath": replica_index_ref}}})
    elif replica_index_ref is None:
        env.append({"name": "ASTRAGO_REPLICA", "value": str(replica.index)})
    if 0 < replica.gpu_milli < 1000 and not replica.mig_profile:
        # Time-slicing does not cap memory; frameworks can (torch.cuda.set_per_process_memory_fraction).
        env.append({"name": "ASTRAGO_GPU_SHARE_MILLI", "value": str(replica.gpu_milli)})
    if not (replica.gpu_indices or replica.gpu_milli or replica.mig_profile):
        # With the NVIDIA runtime as the node default, a container that asks for no GPU would see all.
        env.append({"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"})
    return env


def _container(
    spec: LaunchSpec,
    options: ManifestOptions,
    replica: ReplicaLaunch,
    *,
    name: str = "main",
    replica_index_ref: str | None = None,
    extra_env: list[Manifest] | None = None,
    ports: tuple[int, ...] = (),
) -> Manifest:
    container: Manifest = {
        "name": name,
        "image": _image(spec, options),
        "resources": _resources(replica, options),
        "env": _env(spec, replica, replica_index_ref) + (extra_env or []),
    }
    if spec.command:
        container["command"] = list(spec.command)
    if spec.code_bundle:
        container["workingDir"] = CODE_DIR
    elif spec.working_dir:
        container["workingDir"] = spec.working_dir
    if ports:
        container["ports"] = [
            {"name": f"port-{port}", "containerPort": port, "protocol": "TCP"} for port in ports
        ]
        # As on the local backend: the first port in PORT, all of them in ASTRAGO_PORTS (in a pod they
        # are the requested ports themselves), and ready only once it answers (the Service sends
        # traffic to ready pods only; a rolling update waits for them).
        container["env"] += [
            {"name": "PORT", "value": str(ports[0])},
            {"name": "ASTRAGO_PORTS", "value": ",".join(str(port) for port in ports)},
        ]
        container["readinessProbe"] = readiness_probe(spec, ports[0])
    mounts: list[Manifest] = [
        {
            "name": VOLUMES_POD_VOLUME,
            "mountPath": mount.mount_path,
            "subPath": mount.share_subpath,
            "readOnly": mount.read_only,
        }
        for mount in spec.volumes
    ]
    container["env"] += [{"name": env_name(mount.slug), "value": mount.mount_path} for mount in spec.volumes]
    if spec.code_bundle:
        mounts.append({"name": CODE_VOLUME, "mountPath": CODE_DIR})
    if mounts:
        container["volumeMounts"] = mounts
    return container


def _code_fetcher(spec: LaunchSpec, options: ManifestOptions, replica: ReplicaLaunch) -> Manifest:
    """The init container that unpacks the code bundle before the workload starts. It asks for the same
    CPU and memory as the workload (so the pod keeps its QoS class and needs no more than was reserved)
    and no GPU; it alone holds the download credential."""
    download = options.code_download
    assert download is not None  # build_manifests refuses a code bundle without one
    amounts = _resources(
        ReplicaLaunch(replica.index, replica.node, replica.cpu_milli, replica.memory_mib), options
    )
    return {
        "name": CODE_FETCHER,
        "image": with_registry(download.image, options.image_registry)
        if download.image
        else _image(spec, options),
        "command": ["python3", "-c", CODE_FETCH_SCRIPT],
        "env": [
            {"name": "ASTRAGO_CODE_URL", "value": download.url},
            {"name": "ASTRAGO_CODE_CREDENTIAL", "value": download.credential},
            {"name": "ASTRAGO_CODE_DIR", "value": CODE_DIR},
            {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"},
        ],
        "resources": amounts,
        "volumeMounts": [{"name": CODE_VOLUME, "mountPath": CODE_DIR}],
    }


def readiness_probe(spec: LaunchSpec, port: int) -> Manifest:
    """`health_path` (HTTP GET on the first port) or a TCP connect; `health_interval` seconds apart,
    `health_threshold` failures in a row to be taken out of the Service."""
    path = spec.extra.get("health_path")
    action: Manifest = {"httpGet": {"path": path, "port": port}} if path else {"tcpSocket": {"port": port}}
    interval = spec.extra.get("health_interval")
    threshold = spec.extra.get("health_threshold")
    try:
        period_s = max(1, round(float(interval))) if interval else 5
        failures = max(1, int(threshold)) if threshold else 3
    except ValueError:
        raise BackendError("health_interval and health_threshold must be numbers") from None
    return {**action, "periodSeconds": period_s, "failureThreshold": failures}


def _pod_spec(
    spec: LaunchSpec,
    options: ManifestOptions,
    containers: list[Manifest],
    replicas: tuple[ReplicaLaunch, ...],
    restart_policy: str,
    pod_labels: dict[str, str],
) -> Manifest:
    pod: Manifest = {
        "restartPolicy": restart_policy,
        "containers": containers,
        "affinity": _node_affinity(replicas),
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
    }
    spread = _spread(replicas, pod_labels)
    if spread:
        pod["topologySpreadConstraints"] = spread
    if any(gpu_limits(replica, options) for replica in replicas):
        pod["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    if options.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": secret} for secret in options.image_pull_secrets]
    volumes: list[Manifest] = []
    if spec.volumes:
        volumes.append(
            {"name": VOLUMES_POD_VOLUME, "persistentVolumeClaim": {"claimName": options.volumes_claim}}
        )
    if spec.code_bundle:
        pod["initContainers"] = [_code_fetcher(spec, options, replicas[0])]
        volumes.append({"name": CODE_VOLUME, "emptyDir": {}})
    if volumes:
        pod["volumes"] = volumes
    return pod


def _node_affinity(replicas: tuple[ReplicaLaunch, ...]) -> Manifest:
    nodes = sorted({replica.node for replica in replicas})
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": nodes}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


def _spread(replicas: tuple[ReplicaLaunch, ...], pod_labels: dict[str, str]) -> list[Manifest]:
    """With the same number of replicas on every chosen node, an even spread reproduces the placement
    exactly; uneven placements rely on the capacity the AstraGo scheduler reserved on those nodes."""
    per_node = Counter(replica.node for replica in replicas)
    if len(per_node) < 2 or len(set(per_node.values())) != 1:
        return []
    selector = {key: pod_labels[key] for key in (naming.MANAGED_BY_LABEL, naming.WORKLOAD_LABEL)}
    return [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": selector},
        }
    ]


def _template(spec: LaunchSpec, role: str, pod_spec: Manifest) -> Manifest:
    return {
        "metadata": {
            "labels": naming.workload_labels(spec.workload_id, spec.workspace, role),
            "annotations": _annotations(spec),
        },
        "spec": pod_spec,
    }


def _container_ports(container: Manifest) -> tuple[int, ...]:
    return tuple(port["containerPort"] for port in container.get("ports", ()))


# ------------------------------------------------------------------------------------------ per kind


def _job(spec: LaunchSpec, options: ManifestOptions, *, ddp: bool) -> Manifest:
    name = naming.object_name(spec.workload_id)
    count = len(spec.replicas)
    indexed = count > 1 or ddp
    index_ref = f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']" if indexed else None
    extra_env: list[Manifest] = []
    if ddp:
        extra_env = [
            {"name": "MASTER_ADDR", "value": f"{name}-0.{name}"},
            {"name": "MASTER_PORT", "value": str(DDP_PORT)},
            {"name": "WORLD_SIZE", "value": str(count)},
            {"name": "RANK", "valueFrom": {"fieldRef": {"fieldPath": index_ref}}},
        ]
    labels = naming.workload_labels(spec.workload_id, spec.workspace, "replica")
    container = _container(
        spec,
        options,
        spec.replicas[0],
        replica_index_ref=index_ref,
        extra_env=extra_env,
        ports=(DDP_PORT,) if ddp else spec.ports,
    )
    pod_spec = _pod_spec(spec, options, [container], spec.replicas, "Never", labels)
    if ddp:
        pod_spec["subdomain"] = name  # pods resolve as <job>-<index>.<service>
    job_spec: Manifest = {
        "completions": count,
        "parallelism": count,
        "backoffLimit": 0,  # the platform decides about retries, not the Job controller
        "template": _template(spec, "replica", pod_spec),
    }
    if indexed:
        job_spec["completionMode"] = "Indexed"
    if spec.max_runtime_s:
        job_spec["activeDeadlineSeconds"] = spec.max_runtime_s
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(spec, options, "root"),
        "spec": job_spec,
    }


def _headless_service(spec: LaunchSpec, options: ManifestOptions) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, options, "service"),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,  # ranks must resolve the master before it is Ready
            "selector": naming.selector_for(spec.workload_id),
            "ports": [{"name": "rendezvous", "port": DDP_PORT, "targetPort": DDP_PORT, "protocol": "TCP"}],
        },
    }


def _mpijob(spec: LaunchSpec, options: ManifestOptions) -> Manifest:
    worker = spec.replicas[0]
    slots = int(spec.extra.get("mpi_slots") or max(1, len(worker.gpu_indices)))
    launcher_replica = ReplicaLaunch(
        index=0, node=worker.node, cpu_milli=_MPI_LAUNCHER_CPU_MILLI, memory_mib=_MPI_LAUNCHER_MEMORY_MIB
    )
    launcher_labels = naming.workload_labels(spec.workload_id, spec.workspace, "launcher")
    worker_labels = naming.workload_labels(spec.workload_id, spec.workspace, "replica")
    launcher = _container(spec, options, launcher_replica, name="launcher")
    worker_container = _container(
        spec, options, worker, name="worker", replica_index_ref=f"metadata.labels['{MPI_WORKER_INDEX_LABEL}']"
    )
    worker_container.pop("command", None)  # workers run the image's sshd; the launcher runs mpirun
    if spec.extra.get("mpi_worker_command"):
        worker_container["command"] = spec.extra["mpi_worker_command"].split()
    run_policy: Manifest = {"cleanPodPolicy": "Running", "backoffLimit": 0}
    if spec.max_runtime_s:
        run_policy["activeDeadlineSeconds"] = spec.max_runtime_s
    return {
        "apiVersion": MPIJOB_API_VERSION,
        "kind": "MPIJob",
        "metadata": _metadata(spec, options, "root"),
        "spec": {
            "slotsPerWorker": slots,
            "runPolicy": run_policy,
            "mpiImplementation": spec.extra.get("mpi_implementation", "OpenMPI"),
            "mpiReplicaSpecs": {
                "Launcher": {
                    "replicas": 1,
                    "restartPolicy": "Never",
                    "template": _template(
                        spec,
                        "launcher",
                        _pod_spec(spec, options, [launcher], (launcher_replica,), "Never", launcher_labels),
                    ),
                },
                "Worker": {
                    "replicas": len(spec.replicas),
                    "restartPolicy": "Never",
                    "template": _template(
                        spec,
                        "replica",
                        _pod_spec(spec, options, [worker_container], spec.replicas, "Never", worker_labels),
                    ),
                },
            },
        },
    }


def _interactive_pod(spec: LaunchSpec, options: ManifestOptions) -> Manifest:
    replica = spec.replicas[0]
    ports = spec.ports or ((NOTEBOOK_PORT,) if not spec.image else ())
    container = _container(spec, options, replica, ports=ports)
    labels = naming.workload_labels(spec.workload_id, spec.workspace, "replica")
    pod_spec = _pod_spec(spec, options, [container], (replica,), "Never", labels)
    if spec.max_runtime_s:
        pod_spec["activeDeadlineSeconds"] = spec.max_runtime_s
    metadata = _metadata(spec, options, "root")
    metadata["labels"] = {**labels, naming.ROLE_LABEL: "root"}
    metadata["annotations"][naming.REPLICA_ANNOTATION] = "0"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}


def _deployment(spec: LaunchSpec, options: ManifestOptions) -> Manifest:
    labels = naming.workload_labels(spec.workload_id, spec.workspace, "replica")
    container = _container(spec, options, spec.replicas[0], ports=spec.ports, replica_index_ref="")
    pod_spec = _pod_spec(spec, options, [container], spec.replicas, "Always", labels)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec, options, "root"),
        "spec": {
            "replicas": len(spec.replicas),
            "selector": {"matchLabels": naming.selector_for(spec.workload_id)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": _template(spec, "replica", pod_spec),
        },
    }


def _service(spec: LaunchSpec, options: ManifestOptions, ports: tuple[int, ...]) -> Manifest:
    node_port = spec.extra.get("expose", "").lower() == "nodeport"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, options, "service"),
        "spec": {
            "type": "NodePort" if node_port else "ClusterIP",
            "selector": naming.selector_for(spec.workload_id),
            "ports": [
                {"name": f"port-{port}", "port": port, "targetPort": port, "protocol": "TCP"}
                for port in ports
            ],
        },
    }


def _volumes_claim(options: ManifestOptions) -> Manifest:
    """The claim holding every volume (one folder each); the chart creates it for the server too."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": options.volumes_claim,
            "namespace": options.namespace,
            "labels": {
                naming.APP_NAME_LABEL: naming.APP_NAME,
                naming.MANAGED_BY_LABEL: naming.MANAGER,
                naming.ROLE_LABEL: "volume",
            },
        },
        "spec": {
            "accessModes": ["ReadWriteMany"],  # the server and every workload mount it at once
            "storageClassName": options.storage_class,
            "resources": {"requests": {"storage": DEFAULT_VOLUMES_CLAIM_SIZE}},
        },
    }
