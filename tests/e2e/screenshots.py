"""Screenshots of the console's main pages, from a real server with real workloads, for the docs.

    .venv/bin/python -m tests.e2e.screenshots      (or: make screenshots)

Writes docs/screenshots/*.png. Needs the console built (`make web`) and /usr/bin/chromium."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD
from tests.support.server import ADMIN_PASSWORD, Gate, ServerProcess, User

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _user(admin: User, name: str, workspace: str, guaranteed: int, limit: int) -> User:
    admin.api("POST", "/api/v1/users", json={"username": name, "password": PASSWORD}).raise_for_status()
    admin.api("POST", "/api/v1/workspaces", json={"name": workspace}).raise_for_status()
    member = {"username": name, "role": "member"}
    admin.api("PUT", f"/api/v1/workspaces/{workspace}/members", json=member).raise_for_status()
    quota = {"gpu_guaranteed": guaranteed, "gpu_limit": limit}
    admin.api("PUT", f"/api/v1/workspaces/{workspace}/quota", json=quota).raise_for_status()
    token = admin.api("POST", "/api/v1/auth/login", json={"username": name, "password": PASSWORD}).json()
    return User(admin.server, name, admin.config_dir, token=token["token"])


def _populate(admin: User, gate: Gate) -> tuple[str, str]:
    alice = _user(admin, "alice", "vision", 2, 2)
    bob = _user(admin, "bob", "nlp", 1, 2)
    gpu = {"cpu": "500m", "memory": "2Gi", "gpus": 1}
    epochs = "for i in 1 2 3 4 5 6; do echo epoch $i loss 0.$((9 - i)); done; "
    chatty = ["/bin/sh", "-c", epochs + gate.command()[2]]
    done = alice.submit("vision", ["/bin/sh", "-c", "echo done"], name="eval-baseline", resources=gpu)
    alice.wait_status(done, "SUCCEEDED")
    failed = alice.submit("vision", ["/bin/sh", "-c", "echo oops >&2; exit 3"], name="bad-lr", resources=gpu)
    alice.wait_status(failed, "FAILED")
    running = alice.submit("vision", chatty, name="train-resnet50", resources=gpu, priority="high")
    alice.submit("vision", gate.command(), name="train-vit", resources=gpu)
    alice.wait_status(running, "RUNNING")
    waiting = alice.submit("vision", gate.command(), name="sweep-lr-3", resources=gpu)
    bob.submit("nlp", gate.command(), name="finetune-llm", resources={**gpu, "gpus": 1})
    share = {"cpu": "250m", "memory": "1Gi", "gpus": 0, "gpu_share": 0.5}
    bob.submit("nlp", gate.command(), name="notebook-share", resources=share)
    alice.wait_status(waiting, "PENDING")
    time.sleep(2)  # let the scheduler write the reason and queue position
    return running, waiting


def _shoot(page: Page, name: str) -> None:
    page.wait_for_timeout(600)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)


def _sign_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = ServerProcess(data_dir=root / "data", simulate_gpus="2xA100-80GB,2xH100-80GB")
        server.start()
        gate = Gate(server.shared_dir / "gates")  # where the sandboxed jobs see it
        try:
            admin = User(server, "admin", root / "admin")
            admin.login(ADMIN_PASSWORD)
            running, waiting = _populate(admin, gate)
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(f"{server.url}/sign-in")
                _shoot(page, "sign-in")
                _sign_in(page, server.url, "alice", PASSWORD)
                expect(page.get_by_test_id("queue-length")).not_to_have_text("…")
                _shoot(page, "overview")
                page.goto(f"{server.url}/workloads")
                expect(page.locator("[data-workload-id]").first).to_be_visible()
                _shoot(page, "workloads")
                page.goto(f"{server.url}/workloads/{waiting}")
                expect(page.get_by_test_id("queue-position")).to_be_visible()
                _shoot(page, "workload-pending")
                page.goto(f"{server.url}/workloads/{running}")
                expect(page.get_by_test_id("logs")).to_contain_text("epoch 6")
                _shoot(page, "workload-running")
                page.get_by_role("tab", name="Terminal").click()
                expect(page.get_by_test_id("terminal").locator(".xterm-rows")).to_contain_text("$")
                page.get_by_test_id("terminal").click()
                page.keyboard.type("env | grep -E '^(CUDA_VISIBLE_DEVICES|ASTRAGO_WORKLOAD_ID)=' | sort")
                page.keyboard.press("Enter")
                expect(page.get_by_test_id("terminal")).to_contain_text("CUDA_VISIBLE_DEVICES=")
                page.evaluate("window.scrollTo(0, 0)")  # typing scrolled the page; the header is fixed
                _shoot(page, "workload-terminal")
                page.goto(f"{server.url}/submit")
                page.get_by_label("Name").fill("train-detr")
                page.get_by_label("Command").fill("python train.py --epochs 50 --lr 3e-4")
                _shoot(page, "submit")
                page.get_by_role("tab", name="YAML").click()
                _shoot(page, "submit-yaml")
                page.goto(f"{server.url}/nodes")
                _shoot(page, "nodes")
                volume = {"name": "imagenet-mini", "kind": "dataset", "size": "10Gi"}
                admin.api("POST", "/api/v1/workspaces/vision/volumes", json=volume).raise_for_status()
                page.goto(f"{server.url}/volumes?workspace=vision")
                expect(page.get_by_text("imagenet-mini").first).to_be_visible()
                _shoot(page, "volumes")
                page.goto(f"{server.url}/usage")
                _shoot(page, "usage")
                page.get_by_role("button", name="Account").click()
                page.get_by_role("menuitem", name="Sign out").click()
                _sign_in(page, server.url, "admin", ADMIN_PASSWORD)
                page.goto(f"{server.url}/workspaces")
                expect(page.locator("[data-workspace='vision']")).to_be_visible()
                _shoot(page, "workspaces")
                page.goto(f"{server.url}/audit")
                _shoot(page, "audit")
                page.goto(f"{server.url}/alerts")
                _shoot(page, "alerts")
                browser.close()
        finally:
            gate.open_all()
            server.stop()
    print(json.dumps(sorted(p.name for p in OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
