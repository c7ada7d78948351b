"""Every manifest the backend generates is valid Kubernetes (kubernetes-validate --strict, 1.28 and
1.30), MPIJobs match the kubeflow.org/v2beta1 structure, and each kind carries what the issue asks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from astrago.backends.base import BackendError, LaunchSpec
from astrago.backends.kubernetes import naming
from astrago.backends.kubernetes.manifests import (
    CODE_DIR,
    CODE_FETCH_SCRIPT,
    DEFAULT_NOTEBOOK_IMAGE,
    CodeDownload,
    Manifest,
    build_manifests,
    gpu_limits,
    with_registry,
)
from astrago.domain.enums import WorkloadKind
from tests.unit.backends.kubernetes.factories import launch_spec, options, replica

KUBERNETES_VERSIONS = ("1.28.0", "1.30.0")
MPIJOB_SCHEMA = json.loads((Path(__file__).parent / "mpijob_v2beta1.schema.json").read_text())

SPECS: dict[str, LaunchSpec] = {
    "job": launch_spec(max_runtime_s=3600, volumes=(("imagenet", "/data"),)),
    "job-indexed": launch_spec(replicas=(replica(0, "gpu-1"), replica(1, "gpu-1"))),
    "job-cpu": launch_spec(replicas=(replica(gpus=0),)),
    "ddp": launch_spec(
        WorkloadKind.DISTRIBUTED, replicas=(replica(0, "gpu-1", gpus=4), replica(1, "gpu-2", gpus=4))
    ),
    "mpi": launch_spec(
        WorkloadKind.DISTRIBUTED,
        replicas=(replica(0, "gpu-1", gpus=2), replica(1, "gpu-2", gpus=2)),
        command=("mpirun", "-np", "4", "python", "train.py"),
        extra={"framework": "mpi"},
        max_runtime_s=600,
    ),
    "interactive": launch_spec(WorkloadKind.INTERACTIVE, image=None, command=(), replicas=(replica(gpus=0),)),
    "interactive-mig": launch_spec(
        WorkloadKind.INTERACTIVE, replicas=(replica(gpus=0, mig_profile="1g.10gb"),)
    ),
    "job-code": launch_spec(code_bundle="abc123def", volumes=(("imagenet", "/data"),)),
    "mpi-code": launch_spec(
        WorkloadKind.DISTRIBUTED,
        replicas=(replica(0, "gpu-1", gpus=2), replica(1, "gpu-2", gpus=2)),
        command=("mpirun", "-np", "4", "python", "train.py"),
        extra={"framework": "mpi"},
        code_bundle="abc123def",
    ),
    "service-code": launch_spec(
        WorkloadKind.SERVICE, replicas=(replica(0, "gpu-1", gpus=0),), ports=(8000,), code_bundle="abc123def"
    ),
    "service": launch_spec(
        WorkloadKind.SERVICE,
        replicas=(replica(0, "gpu-1", gpus=0, gpu_milli=250), replica(1, "gpu-2", gpus=0, gpu_milli=250)),
        ports=(8000,),
        extra={"expose": "nodeport"},
    ),
}


CODE_DOWNLOAD = CodeDownload(
    url="http://astrago-core.astrago:8080/api/v1/code-bundles/abc123def/archive", credential="wl-1.1700.sig"
)


def all_objects(spec: LaunchSpec) -> list[Manifest]:
    built = build_manifests(
        spec,
        options(
            image_pull_secrets=("harbor-pull",), image_registry="harbor.local", code_download=CODE_DOWNLOAD
        ),
    )
    return [built.root, *built.dependents, *built.volume_claims]


def pod_templates(mpijob: Manifest) -> list[Manifest]:
    return [replica_spec["template"] for replica_spec in mpijob["spec"]["mpiReplicaSpecs"].values()]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("case", sorted(SPECS))
def test_every_manifest_is_valid_kubernetes(case: str, version: str) -> None:
    for obj in all_objects(SPECS[case]):
        if obj["kind"] == "MPIJob":
            jsonschema.validate(obj, MPIJOB_SCHEMA)
            for template in pod_templates(obj):  # the pod templates inside are core objects
                document = {
                    "apiVersion": "v1",
                    "kind": "PodTemplate",
                    "metadata": {"name": "t"},
                    "template": template,
                }
                kubernetes_validate.validate(document, version, strict=True)
        else:
            kubernetes_validate.validate(obj, version, strict=True)


def test_an_unknown_field_fails_validation() -> None:
    """The validation above can fail: a misspelt field is caught."""
    job = build_manifests(SPECS["job"], options()).root
    job["spec"]["completion"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, "1.28.0", strict=True)
    mpijob = build_manifests(SPECS["mpi"], options()).root
    mpijob["spec"]["mpiReplicaSpecs"]["Workers"] = mpijob["spec"]["mpiReplicaSpecs"].pop("Worker")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(mpijob, MPIJOB_SCHEMA)


@pytest.mark.parametrize("case", sorted(SPECS))
def test_labels_annotations_and_deterministic_names(case: str) -> None:
    spec = SPECS[case]
    first, second = all_objects(spec), all_objects(spec)
    assert first == second
    for obj in first:
        labels = obj["metadata"]["labels"]
        assert labels[naming.APP_NAME_LABEL] == "astrago"
        assert labels[naming.MANAGED_BY_LABEL] == "astrago"
        assert labels[naming.WORKSPACE_LABEL] == "vision"
        assert obj["metadata"]["namespace"] == "astrago"
        if obj["kind"] != "PersistentVolumeClaim":
            assert labels[naming.WORKLOAD_LABEL] == "wl-1"
            assert obj["metadata"]["name"] == naming.object_name("wl-1")


def _pod_spec(obj: Manifest) -> Manifest:
    if obj["kind"] == "Pod":
        return dict(obj["spec"])
    spec: Manifest = obj["spec"]["template"]["spec"]
    return spec


def _env(container: Manifest) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_single_job_pins_nodes_limits_gpus_and_mounts_volumes() -> None:
    built = build_manifests(SPECS["job"], options())
    job = built.root
    assert job["kind"] == "Job"
    assert "completionMode" not in job["spec"]
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 3600
    pod = _pod_spec(job)
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu-1"]}]}]
    container = pod["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "4000m", "memory": "16384Mi", "nvidia.com/gpu": "1"}
    assert container["command"] == ["python", "train.py"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == naming.volume_claim_name(
        "vision", "imagenet"
    )
    assert container["volumeMounts"] == [{"name": "volume-0", "mountPath": "/data"}]
    (claim,) = built.volume_claims
    assert claim["spec"]["storageClassName"] == "astrago-nfs-csi"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_ddp_is_an_indexed_job_with_a_headless_service_and_rendezvous_env() -> None:
    built = build_manifests(SPECS["ddp"], options())
    job, (service,) = built.root, built.dependents
    name = naming.object_name("wl-1")
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 2
    pod = _pod_spec(job)
    assert pod["subdomain"] == name
    env = _env(pod["containers"][0])
    assert env["MASTER_ADDR"] == f"{name}-0.{name}"
    assert env["WORLD_SIZE"] == "2"
    assert env["RANK"] == {
        "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
    }
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == naming.selector_for("wl-1")
    # one replica on each of two nodes: an even spread reproduces the placement exactly
    assert pod["topologySpreadConstraints"][0]["maxSkew"] == 1


def test_mpi_job_has_a_launcher_and_workers_with_slots() -> None:
    mpijob = build_manifests(SPECS["mpi"], options()).root
    assert mpijob["apiVersion"] == "kubeflow.org/v2beta1"
    assert mpijob["spec"]["slotsPerWorker"] == 2
    assert mpijob["spec"]["runPolicy"]["activeDeadlineSeconds"] == 600
    specs = mpijob["spec"]["mpiReplicaSpecs"]
    assert specs["Worker"]["replicas"] == 2
    assert specs["Launcher"]["replicas"] == 1
    launcher = specs["Launcher"]["template"]["spec"]["containers"][0]
    worker = specs["Worker"]["template"]["spec"]["containers"][0]
    assert launcher["command"][0] == "mpirun"
    assert "command" not in worker
    assert "nvidia.com/gpu" not in launcher["resources"]["limits"]
    assert _env(worker)["ASTRAGO_REPLICA"] == {
        "fieldRef": {"fieldPath": "metadata.labels['training.kubeflow.org/replica-index']"}
    }
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "2"


def test_interactive_defaults_to_jupyterlab_with_a_service_and_a_mig_slice() -> None:
    built = build_manifests(SPECS["interactive"], options(image_registry="harbor.local:5000"))
    pod, (service,) = built.root, built.dependents
    container = pod["spec"]["containers"][0]
    assert container["image"] == with_registry(DEFAULT_NOTEBOOK_IMAGE, "harbor.local:5000")
    assert container["ports"][0]["containerPort"] == 8888
    assert service["spec"]["ports"][0]["port"] == 8888
    assert service["spec"]["type"] == "ClusterIP"
    assert _env(container)["NVIDIA_VISIBLE_DEVICES"] == "void"  # no GPU asked: none visible
    mig = build_manifests(SPECS["interactive-mig"], options()).root["spec"]["containers"][0]
    assert mig["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "1"


def test_service_is_a_deployment_with_rolling_updates_and_a_node_port() -> None:
    built = build_manifests(SPECS["service"], options(shared_units_per_gpu={"gpu-1": 4, "gpu-2": 4}))
    deployment, (service,) = built.root, built.dependents
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["selector"]["matchLabels"] == naming.selector_for("wl-1")
    assert service["spec"]["type"] == "NodePort"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu.shared"] == "1"  # 250 milli of 4 shares/GPU
    assert _env(container)["ASTRAGO_GPU_SHARE_MILLI"] == "250"
    assert "ASTRAGO_REPLICA" not in _env(container)  # Deployment pods are interchangeable


def test_gpu_limits_for_whole_mig_and_shared_gpus() -> None:
    opts = options(shared_gpu_resource="nvidia.com/gpu.shared", shared_units_per_gpu={"gpu-1": 10})
    assert gpu_limits(replica(gpus=4), opts) == {"nvidia.com/gpu": "4"}
    assert gpu_limits(replica(gpus=0, mig_profile="3g.40gb"), opts) == {"nvidia.com/mig-3g.40gb": "1"}
    assert gpu_limits(replica(gpus=0, gpu_milli=500), opts) == {"nvidia.com/gpu.shared": "5"}
    assert gpu_limits(replica(gpus=0, gpu_milli=10), opts) == {"nvidia.com/gpu.shared": "1"}
    assert gpu_limits(replica(gpus=0), opts) == {}


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("pytorch/pytorch:2.3", "harbor.local/pytorch/pytorch:2.3"),
        ("python:3.11", "harbor.local/library/python:3.11"),
        ("nvcr.io/nvidia/pytorch:24.01-py3", "harbor.local/nvidia/pytorch:24.01-py3"),
        ("localhost:5000/team/app:1", "harbor.local/team/app:1"),
        ("harbor.local/team/app:1", "harbor.local/team/app:1"),
    ],
)
def test_private_registry_prefix(image: str, expected: str) -> None:
    assert with_registry(image, "harbor.local") == expected
    assert with_registry(image, None) == image


def test_pull_secrets_reach_every_pod() -> None:
    for case in SPECS:
        for obj in all_objects(SPECS[case]):
            templates = pod_templates(obj) if obj["kind"] == "MPIJob" else []
            if obj["kind"] in ("Job", "Deployment", "Pod"):
                templates = [{"spec": _pod_spec(obj)}]
            for template in templates:
                assert template["spec"]["imagePullSecrets"] == [{"name": "harbor-pull"}]


def test_a_job_without_an_image_is_refused_clearly() -> None:
    with pytest.raises(BackendError, match="needs a container image"):
        build_manifests(launch_spec(image=None), options())
    with pytest.raises(BackendError, match="no replica placements"):
        build_manifests(launch_spec(replicas=()), options())


def test_a_code_bundle_is_fetched_by_an_init_container_into_the_working_directory() -> None:
    pod = _pod_spec(build_manifests(SPECS["job-code"], options(code_download=CODE_DOWNLOAD)).root)
    (fetcher,) = pod["initContainers"]
    (main,) = pod["containers"]
    assert fetcher["command"] == ["python3", "-c", CODE_FETCH_SCRIPT]
    assert _env(fetcher)["ASTRAGO_CODE_URL"] == CODE_DOWNLOAD.url
    assert _env(fetcher)["ASTRAGO_CODE_CREDENTIAL"] == CODE_DOWNLOAD.credential
    assert fetcher["image"] == main["image"]  # the workload's own image unless code_fetch_image is set
    # Same CPU and memory as the workload (QoS stays Guaranteed, nothing beyond the reservation), no GPU.
    assert fetcher["resources"] == {
        "requests": {"cpu": "4000m", "memory": "16384Mi"},
        "limits": {"cpu": "4000m", "memory": "16384Mi"},
    }
    assert main["workingDir"] == CODE_DIR
    assert {"name": "code", "mountPath": CODE_DIR} in main["volumeMounts"]
    assert {"name": "volume-0", "mountPath": "/data"} in main["volumeMounts"]
    assert {"name": "code", "emptyDir": {}} in pod["volumes"]
    # Only the init container holds the download credential; the workload's own env does not.
    assert "ASTRAGO_CODE_CREDENTIAL" not in _env(main)


def test_every_pod_of_an_mpi_job_fetches_the_code_and_a_set_image_is_mirrored() -> None:
    download = CodeDownload(url=CODE_DOWNLOAD.url, credential="c", image="python:3.12-slim")
    mpijob = build_manifests(
        SPECS["mpi-code"], options(code_download=download, image_registry="harbor.local")
    ).root
    for template in pod_templates(mpijob):
        (fetcher,) = template["spec"]["initContainers"]
        assert fetcher["image"] == "harbor.local/library/python:3.12-slim"
        assert template["spec"]["containers"][0]["workingDir"] == CODE_DIR


def test_a_code_bundle_without_an_internal_url_is_refused_clearly() -> None:
    with pytest.raises(BackendError, match="internal_url"):
        build_manifests(SPECS["job-code"], options())
