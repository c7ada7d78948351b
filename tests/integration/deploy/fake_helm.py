"""A fake `helm` for the cluster half of the CLI (no Kubernetes API server can run here): it records every
call, delegates chart work (show, template, package, pull) to the real helm, and keeps a tiny release
state for upgrade, status, get manifest and uninstall. FAKE_HELM_FAIL=<release> makes that upgrade fail."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

SCRIPT = """\
#!{python} -S
import json, os, subprocess, sys
from pathlib import Path

args = sys.argv[1:]
state = Path(os.environ["FAKE_HELM_STATE"])
state.mkdir(parents=True, exist_ok=True)
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps(args) + "\\n")
command = args[0]
if command in ("show", "template", "package", "pull", "repo", "lint"):
    os.execv({real!r}, [{real!r}, *args])
name = args[2] if command == "upgrade" else args[1] if len(args) > 1 and command != "get" else args[2]
release = state / (name + ".json")
if command == "upgrade":
    if os.environ.get("FAKE_HELM_FAIL") == name:
        sys.exit("Error: UPGRADE FAILED: context deadline exceeded")
    revision = json.loads(release.read_text())["version"] + 1 if release.exists() else 1
    release.write_text(json.dumps({{"name": name, "version": revision, "manifest": "",
        "info": {{"status": "deployed", "last_deployed": "2026-11-22T04:00:00Z"}},
        "chart": {{"metadata": {{"name": name, "version": "0"}}}}}}))
    print("Release " + name + " has been upgraded. Happy Helming!")
elif not release.exists():
    sys.exit("Error: release: not found")
elif command == "status":
    print(release.read_text())
elif command == "get":
    print(json.loads(release.read_text())["manifest"])
elif command == "uninstall":
    release.unlink()
    print("release " + name + " uninstalled")
"""


def install_fake_helm(directory: Path, real_helm: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "helm"
    script.write_text(SCRIPT.format(python=sys.executable, real=str(real_helm)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def recorded_calls(state: Path) -> list[list[str]]:
    log = state / "calls.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def set_deployed_manifest(state: Path, release: str, manifest: str) -> None:
    path = state / f"{release}.json"
    data = json.loads(path.read_text())
    data["manifest"] = manifest
    path.write_text(json.dumps(data))
