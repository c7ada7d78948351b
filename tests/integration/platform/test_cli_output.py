"""Read commands print for pipes and terminals: one whole line per row in a pipe, -o wide|json|yaml|name."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from tests.support.server import ASTRAGO, Gate, User


def _pipe(user: User, command: str) -> str:
    """`astrago <command>` piped through a shell as a user would type it (stdout is not a terminal)."""
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(user.config_dir),
        "ASTRAGO_URL": user.server.url,
        "COLUMNS": "80",
    }
    astrago = " ".join(ASTRAGO)
    done = subprocess.run(
        command.replace("astrago", astrago), shell=True, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_ps_in_a_pipe_has_one_whole_line_per_workload(module_admin: User) -> None:
    admin = module_admin
    gate = Gate(admin.server.shared_dir / "gates")  # where this module's server lets jobs look
    admin.cli("workspace", "create", "pipes")
    running = [
        admin.cli("run", "-w", "pipes", "--gpus", "1", "--cpu", "100m", "--", *gate.command()).stdout.strip()
        for _ in range(4)
    ]
    for workload_id in running:
        admin.wait_status(workload_id, "RUNNING")
    waiting = admin.cli(
        "run",
        "-w",
        "pipes",
        "--gpus",
        "2",
        "--cpu",
        "100m",
        "--name",
        "a-job-with-a-long-name-to-fit",
        "--",
        "true",
    )
    waiting_id = waiting.stdout.strip()
    reason = admin.wait_status(waiting_id, "PENDING")["reason"]
    assert len(reason) > 40

    assert _pipe(admin, "astrago ps -w pipes | wc -l").strip() == "6"  # five workloads and the header
    lines = _pipe(admin, "astrago ps -w pipes").splitlines()
    assert lines[0].split() == ["ID", "NAME", "WORKSPACE", "STATUS", "GPUS", "REPLICAS", "AGE", "REASON"]
    pending = next(line for line in lines if line.startswith(waiting_id))
    assert "a-job-with-a-long-name-to-fit" in pending
    assert pending.rstrip().endswith(reason)  # never cut in a pipe, even at 80 columns
    assert sorted(line.split()[0] for line in lines[1:]) == sorted([*running, waiting_id])

    names = _pipe(admin, "astrago ps -w pipes -o name").split()
    assert sorted(names) == sorted(f"workload/{i}" for i in [*running, waiting_id])
    assert _pipe(admin, f"astrago describe workload/{waiting_id} -o name").strip() == f"workload/{waiting_id}"

    wide = _pipe(admin, "astrago ps -w pipes -o wide").splitlines()
    assert wide[0].split()[-2:] == ["REASON", "COMMAND"]
    assert any(line.endswith("true") for line in wide)

    as_yaml = yaml.safe_load(_pipe(admin, "astrago ps -w pipes -o yaml"))
    assert as_yaml["total"] == 5
    assert admin.cli("ps", "-w", "pipes", "--json").json()["total"] == 5  # --json stays an alias of -o json
    gate.open_all()
    for workload_id in running:  # the next tests find the GPUs free
        admin.wait_status(workload_id, "SUCCEEDED")


def test_every_read_command_takes_the_output_formats(module_admin: User) -> None:
    admin = module_admin
    for command in (
        ["whoami"],
        ["nodes"],
        ["audit"],
        ["user", "list"],
        ["workspace", "list"],
        ["workspace", "show", "default"],
        ["quota", "show", "default"],
        ["token", "list"],
        ["ps", "-a"],
    ):
        as_yaml = yaml.safe_load(admin.cli(*command, "-o", "yaml").stdout)
        assert as_yaml, command
    assert admin.cli("nodes", "-o", "json").json() == yaml.safe_load(admin.cli("nodes", "-o", "yaml").stdout)
    assert admin.cli("whoami", "-o", "name").stdout == "user/admin\n"
    assert admin.cli("workspace", "list", "-o", "name").stdout.splitlines()[0].startswith("workspace/")
    assert "UUID" in admin.cli("nodes", "-o", "wide").stdout
    nodes = _pipe(admin, "astrago nodes").splitlines()
    assert len(nodes) == 5  # the header and one line per GPU, each naming its node
    refused = admin.cli("ps", "-o", "xml", check=False)
    assert refused.returncode == 2
    assert "'xml' is not one of" in refused.stderr


def test_ps_watch_in_a_pipe_prints_each_change_through_to_the_end(module_admin: User) -> None:
    """`ps --watch` follows the live stream: the list, then one line per change, the last one SUCCEEDED."""
    admin = module_admin
    admin.cli("workspace", "create", "watched")
    env = {**os.environ, "XDG_CONFIG_HOME": str(admin.config_dir), "ASTRAGO_URL": admin.server.url}
    table = subprocess.Popen(
        [*ASTRAGO, "ps", "--watch", "-w", "watched"], env=env, stdout=subprocess.PIPE, text=True
    )
    ndjson = subprocess.Popen(
        [*ASTRAGO, "ps", "--watch", "-w", "watched", "-o", "json"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert table.stdout is not None
        assert ndjson.stdout is not None
        assert table.stdout.readline().split()[:4] == ["ID", "NAME", "WORKSPACE", "STATUS"]
        workload_id = admin.cli(
            "run", "-w", "watched", "--gpus", "1", "--cpu", "100m", "--", "sleep", "1"
        ).stdout
        workload_id = workload_id.strip()

        seen: list[str] = []
        while "SUCCEEDED" not in seen:  # the stream's own pace; the test's timeout bounds it
            fields = table.stdout.readline().split()
            assert fields[0] == workload_id, fields
            seen.append(fields[3])
        # Each event carries the state when it is sent, so quick steps may show the later state twice.
        assert seen[0] in ("PENDING", "ADMITTED", "STARTING", "RUNNING", "SUCCEEDED")
        assert seen.count("SUCCEEDED") == 1  # the final line once, however many events came after

        states: list[str] = []
        while "SUCCEEDED" not in states:
            change = json.loads(ndjson.stdout.readline())
            assert change["id"] == workload_id
            states.append(change["status"])
    finally:
        for process in (table, ndjson):
            process.terminate()
            process.wait(timeout=10)
