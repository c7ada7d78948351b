"""Two versions of the upload path side by side: a server and CLI of each (their `src` folders, e.g. from
`git archive <commit> src | tar -x -C DIR`), the same files uploaded through each in interleaved rounds
(so that the machine's load hits both alike), next to a direct copy (`cp` then `sync`). See README.md."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="the src folder of the old version")
    parser.add_argument("--after", type=Path, required=True, help="the src folder of the new version")
    parser.add_argument("--size", type=int, default=2_000_000_000, help="bytes per measurement (2 GB)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="astrago-upload-compare-"))
    one = work / "one" / "one.bin"
    four = work / "four"
    one.parent.mkdir()
    four.mkdir()
    bench.make_source(one, args.size)
    for index in range(4):
        bench.make_source(four / f"part{index}.bin", args.size // 4)
    setups: dict[str, tuple[bench.Server, bench.Client]] = {}
    try:
        for name, src in (("before", args.before), ("after", args.after)):
            os.environ["PYTHONPATH"] = str(src.resolve())  # the server and every CLI run import this version
            (work / name).mkdir()
            server = bench.Server(work / name)
            setups[name] = (server, bench.Client(server, work / name / "home"))
        os.environ.pop("PYTHONPATH")
        seconds: dict[str, list[float]] = {}
        startups: dict[str, list[tuple[float, float]]] = {name: [] for name in setups}
        parts = sorted(four.iterdir())
        load = [os.getloadavg()[0]]
        for round_ in range(args.rounds):
            for name, (server, client) in setups.items():
                add = seconds.setdefault
                startups[name].append(client.startup())
                add(f"{name} direct 1", []).append(bench.direct_copy([one], server.data / "direct"))
                add(f"{name} api 1", []).append(client.upload([one], f"one-{round_}", 1))
                add(f"{name} direct 4", []).append(bench.direct_copy(parts, server.data / "direct"))
                add(f"{name} api 4", []).append(client.upload(parts, f"four-{round_}", 4))
            load.append(os.getloadavg()[0])
        report = {
            "load_average_1min": load,
            **{
                name: bench.report(
                    args.size,
                    args.rounds,
                    {k.removeprefix(f"{name} "): v for k, v in seconds.items() if k.startswith(f"{name} ")},
                    startups[name],
                    client.cpu,
                    [],  # no resumes here: bench.py measures them
                    (load[0], 0, 0),
                    (load[-1], 0, 0),
                )
                for name, (_, client) in setups.items()
            },
        }
        print(json.dumps(report, indent=2))
    finally:
        for server, _ in setups.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
