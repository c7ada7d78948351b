"""What `diff` compares: the rendered manifest without the CRDs helm keeps out of a release's manifest."""

from __future__ import annotations

from astrago.deploy.apply import without_crds_directory


def test_diff_ignores_the_crds_directory() -> None:
    crd = "---\n# Source: gpu-operator/crds/nvidia.com_clusterpolicies.yaml\nkind: CustomResourceDefinition\n"
    deployment = "---\n# Source: gpu-operator/templates/operator.yaml\nkind: Deployment\n"
    assert without_crds_directory(crd + deployment) == deployment
    assert without_crds_directory(deployment) == deployment
