"""`astrago run` takes the current directory as the workload's code: a relative script runs."""

from __future__ import annotations

import os

from tests.support.server import User


def test_a_relative_script_runs_from_the_users_directory(module_admin: User) -> None:
    admin = module_admin
    project = admin.workdir
    (project / "src").mkdir(parents=True)
    (project / "notebook_job.py").write_text(
        "import helper\nprint(helper.GREETING, open('data.txt').read())\n"
    )
    (project / "src" / "helper.py").write_text("GREETING = 'from a helper'\n")
    (project / "helper.py").symlink_to("src/helper.py")
    (project / "data.txt").write_text("and its data")
    (project / "checkpoints").mkdir()
    (project / "checkpoints" / "big.bin").write_bytes(b"\\0" * 1024)
    (project / "secret.env").write_text("TOKEN=x")
    (project / "small.csv").write_text("a,b\n")
    (project / ".gitignore").write_text("checkpoints/\n*.env\n*.csv\n")
    (project / ".astragoignore").write_text("!small.csv\n")  # brings back what git ignores

    done = admin.cli("run", "-a", "--", "python", "notebook_job.py")
    assert done.stdout == "from a helper and its data\n"
    assert "uploaded" in done.stderr

    listing = admin.cli("run", "-a", "--", "sh", "-c", "find . -type f | sort")
    assert listing.stdout.split() == [
        "./.astragoignore",
        "./.gitignore",
        "./data.txt",
        "./helper.py",
        "./notebook_job.py",
        "./small.csv",
        "./src/helper.py",
    ]

    # A snapshot: the job writes beside its copy of the code, never into the user's directory.
    admin.cli("run", "-a", "--", "sh", "-c", "echo changed > data.txt")
    assert (project / "data.txt").read_text() == "and its data"

    # An image is the environment; the code still comes from here, unless the image holds it (--no-code).
    # This server runs the local backend, which refuses images by name (after the upload, here).
    with_image = admin.cli("run", "--image", "registry.local/train:1", "--", "true", check=False)
    assert "uploaded" in with_image.stderr
    assert "the local backend of this server cannot run this workload: it lacks images" in with_image.stderr
    image_code = admin.cli("run", "--image", "registry.local/train:1", "--no-code", "--", "true", check=False)
    assert "uploaded" not in image_code.stderr
    assert "it lacks images" in image_code.stderr

    empty = admin.cli("run", "-a", "--no-code", "--", "sh", "-c", "ls | wc -l")
    assert empty.stdout.strip() == "0", empty.stderr


def test_a_directory_past_the_limit_is_refused_before_upload(module_admin: User) -> None:
    admin = module_admin
    admin.cli("workspace", "create", "big")
    big = admin.workdir / "weights"
    big.mkdir(parents=True)
    (big / "model.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # random: compression cannot hide it

    refused = admin.cli("run", "-w", "big", "--", "true", check=False, env={"ASTRAGO_CODE_LIMIT_MIB": "1"})
    assert refused.returncode == 2
    assert "(the limit is 1 MiB); largest: weights/ 3.0 MiB" in refused.stderr
    assert admin.cli("ps", "-a", "-w", "big", "-o", "name").stdout == ""  # nothing was submitted


def test_the_server_refuses_what_is_not_a_plain_tree(module_admin: User) -> None:
    not_tar = module_admin.api("POST", "/api/v1/code-bundles", content=b"not a tarball")
    assert not_tar.status_code == 422
    assert "not a gzip'd tar archive" in not_tar.json()["detail"]
    stranger = module_admin.api(
        "POST", "/api/v1/workloads", json={"workspace": "default", "command": ["true"], "code": "abcdef1234"}
    )
    assert stranger.status_code == 404
    assert "code bundle 'abcdef1234' does not exist or is not yours" in stranger.json()["detail"]
