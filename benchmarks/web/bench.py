"""Web console benchmark: with 10,000 workloads in the store, in Debian's Chromium,

1. time to interactive of the workloads page (navigation start -> first rows on screen, table usable),
2. latency from a state change on the server (the transition's own timestamp) to the row changing on
   screen, over live events (no polling),
3. JavaScript shipped for the first page, gzipped.

Run: .venv/bin/python -m benchmarks.web.bench [--workloads 10000] [--jobs 40] [--loads 7]
It needs the console built (`make web`). Results: benchmarks/web/results.json (and printed)."""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright
from tests.support.server import ADMIN_PASSWORD, ServerProcess, User

from astrago.api.console import BUILT_CONSOLE
from astrago.store.ids import new_id

HERE = Path(__file__).resolve().parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Records when each row first shows each state (epoch ms), from the DOM itself.
OBSERVE_ROWS = """
window.__rowSeen = {};
window.__firstRowAt = null;
new MutationObserver(() => {
  for (const row of document.querySelectorAll('[data-workload-id]')) {
    const key = row.getAttribute('data-workload-id') + ':' + row.getAttribute('data-status');
    if (!(key in window.__rowSeen)) window.__rowSeen[key] = performance.timeOrigin + performance.now();
    if (window.__firstRowAt === null) window.__firstRowAt = performance.now();
  }
}).observe(document, {subtree: true, childList: true, attributes: true, attributeFilter: ['data-status']});
"""
STATES = ["SUCCEEDED", "FAILED", "CANCELLED"]


def seed(db: Path, count: int) -> None:
    """Insert finished workloads straight into the store (submitting 10,000 over HTTP takes minutes)."""
    con = sqlite3.connect(db)
    workspace_id = con.execute("select id from workspaces where name = 'bench'").fetchone()[0]
    admin_id = con.execute("select id from users where username = 'admin'").fetchone()[0]
    start = datetime.now(UTC) - timedelta(days=7)
    rows = []
    for i in range(count):
        created = start + timedelta(seconds=60 * i)
        stamp = created.strftime("%Y-%m-%d %H:%M:%S.%f")
        resources = {"cpu_milli": 2000, "memory_mib": 16384, "gpus": 1 + i % 4}
        resources |= {"gpu_model": None, "gpu_share_milli": None, "mig_profile": None}
        spec = {"command": ["python", "train.py", f"--seed={i}"], "image": None, "env": {}}
        spec |= {"working_dir": None, "max_runtime_s": None, "ports": [], "volumes": [], "options": {}}
        spec["resources"] = resources
        status = STATES[i % 3]
        identity = (new_id(), workspace_id, f"train-{i:05d}", "job", status, f"seeded {status}")
        rows.append((*identity, 0, True, 1, json.dumps(spec), admin_id, stamp, stamp, stamp, False))
    con.executemany(
        "insert into workloads (id, workspace_id, name, kind, status, reason, priority, preemptible,"
        " replicas, spec, created_by, created_at, updated_at, finished_at, launched) values"
        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    con.commit()
    con.close()


def first_page_js_gzip() -> tuple[int, int]:
    """(raw, gzipped) bytes of every script index.html loads before the first page renders."""
    index = (BUILT_CONSOLE / "index.html").read_text()
    paths = re.findall(r'(?:src|href)="/(assets/[^"]+\.js)"', index)
    raw = [(BUILT_CONSOLE / p).read_bytes() for p in paths]
    return sum(len(b) for b in raw), sum(len(gzip.compress(b, 6)) for b in raw)


def sign_in_script(token: str) -> str:
    session = json.dumps({"token": token, "username": "admin", "expiresAt": None})
    return f"localStorage.setItem('astrago.session', {json.dumps(session)});"


def time_to_interactive(page: Page, url: str) -> float:
    page.goto(f"{url}/workloads", wait_until="commit")
    page.wait_for_function("window.__firstRowAt !== null", timeout=30_000)
    page.wait_for_function("document.querySelectorAll('[data-workload-id]').length >= 10")
    return float(page.evaluate("window.__firstRowAt"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=40, help="state changes to time (each job: 2 to 3)")
    parser.add_argument("--loads", type=int, default=7, help="page loads to time")
    args = parser.parse_args()
    if not (BUILT_CONSOLE / "index.html").is_file():
        raise SystemExit("the console is not built: run `make web` first")

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(data_dir=Path(tmp) / "data")
        server.start()
        admin = User(server, "admin", Path(tmp) / "home")
        admin.login(ADMIN_PASSWORD)
        admin.cli("workspace", "create", "bench")
        server.stop()
        seed(Path(tmp) / "data" / "astrago.db", args.workloads)
        server.start()
        try:
            results = measure(server, admin, args)
        finally:
            server.stop()
    raw, gz = first_page_js_gzip()
    results["first_page_js_bytes"] = raw
    results["first_page_js_gzip_bytes"] = gz
    results["loadavg_before"] = load_before
    results["loadavg_after"] = os.getloadavg()
    results["cpus"] = os.cpu_count()
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def measure(server: ServerProcess, admin: User, args: argparse.Namespace) -> dict[str, Any]:
    admin.login(ADMIN_PASSWORD)
    token = str(admin.token)
    total = admin.api("GET", "/api/v1/workloads", params={"limit": 1}).json()["total"]
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.add_init_script(sign_in_script(token))
        context.add_init_script(OBSERVE_ROWS)
        loads = []
        for _ in range(args.loads):
            page = context.new_page()
            loads.append(time_to_interactive(page, server.url))
            page.close()
        page = context.new_page()
        time_to_interactive(page, server.url)
        # scrolling the virtualized table to the far end of the loaded rows stays cheap
        scroll = page.evaluate(
            """async () => { const el = document.querySelector('[data-testid=workload-rows]');
              const t0 = performance.now(); for (let i = 0; i < 20; i++) { el.scrollTop += 4000;
              await new Promise(r => requestAnimationFrame(r)); } return (performance.now() - t0) / 20; }"""
        )
        page.evaluate("document.querySelector('[data-testid=workload-rows]').scrollTop = 0")
        ids = []
        for _ in range(args.jobs):
            resources = {"gpus": 1, "cpu": "100m", "memory": "64Mi"}
            body = {"workspace": "bench", "command": ["/bin/true"], "resources": resources}
            ids.append(admin.api("POST", "/api/v1/workloads", json=body).json()["id"])
            time.sleep(0.25)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            seen = page.evaluate("window.__rowSeen")
            if all(f"{i}:SUCCEEDED" in seen for i in ids):
                break
            time.sleep(0.5)
        seen = page.evaluate("window.__rowSeen")
        latencies = []
        for workload_id in ids:
            workload = admin.workload(workload_id)
            for status, stamp in (("PENDING", "created_at"), ("SUCCEEDED", "finished_at")):
                key = f"{workload_id}:{status}"
                if key in seen and workload[stamp]:
                    server_ms = datetime.fromisoformat(workload[stamp]).timestamp() * 1000
                    latencies.append(seen[key] - server_ms)
        if os.environ.get("BENCH_DEBUG"):
            print(len(seen), list(seen)[:5], ids[:3], admin.workload(ids[0]))
            page.screenshot(path="/tmp/bench_debug.png")
        missed = sum(1 for i in ids if f"{i}:SUCCEEDED" not in seen)
        browser.close()
    return {
        "workloads_in_store": total,
        "tti_ms_all": loads,
        "tti_ms_first_cold": loads[0],
        "tti_ms_median": statistics.median(loads),
        "scroll_frame_ms": scroll,
        "live_latency_samples": len(latencies),
        "live_latency_ms_p50": percentile(latencies, 0.5),
        "live_latency_ms_p95": percentile(latencies, 0.95),
        "live_latency_ms_max": max(latencies),
        "jobs_whose_end_was_not_seen": missed,
    }


if __name__ == "__main__":
    main()
