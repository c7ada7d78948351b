"""Without helm, `astrago deploy` says in one line how to get it."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrago.deploy import helm as helm_module
from astrago.deploy.errors import DeployError
from astrago.deploy.helm import Helm


def test_a_missing_helm_names_make_deploy_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ASTRAGO_HELM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(helm_module, "default_directory", lambda: tmp_path)
    with pytest.raises(DeployError) as missing:
        _ = Helm().binary
    assert str(missing.value).startswith("helm 3 is not installed: run `make deploy-tools`")

    (tmp_path / "helm").write_text("#!/bin/sh\n")  # where `make deploy-tools` puts it
    assert Helm().binary == str(tmp_path / "helm")
