"""The web console in a real browser: Debian's Chromium driven by Playwright, against a real `astrago
server` (subprocess, simulated GPUs, temp data dir). One browser and one server for the module; each
test signs in its own users in a fresh browser context.

Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread while
it is open, which would break every async test collected after these."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from astrago.api.console import BUILT_CONSOLE
from tests.support.server import ADMIN_PASSWORD, Gate, ServerProcess, User

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "password-123"

expect.set_options(timeout=20_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if (BUILT_CONSOLE / "index.html").is_file():
        return
    skip = pytest.mark.skip(reason=f"the web console is not built ({BUILT_CONSOLE} is empty): run `make web`")
    for item in items:
        if "tests/e2e/" in str(item.path):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(data_dir=tmp_path_factory.mktemp("console") / "data")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def console_admin(console_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> User:
    user = User(console_server, "admin", tmp_path_factory.mktemp("admin-home"))
    user.login(ADMIN_PASSWORD)
    return user


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id="Asia/Seoul")
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def gate(console_server: ServerProcess, tmp_path: Path) -> Iterator[Gate]:
    gates = Gate(console_server.shared_dir / "gates" / tmp_path.name)  # where sandboxed jobs see it
    yield gates
    gates.open_all()


@pytest.fixture
def member(console_admin: User, tmp_path: Path) -> Callable[[str, str], User]:
    """A user who is a member of a workspace of their own (both created over HTTP)."""

    def make(name: str, workspace: str) -> User:
        created = console_admin.api("POST", "/api/v1/users", json={"username": name, "password": PASSWORD})
        assert created.status_code == 201, created.text
        made = console_admin.api("POST", "/api/v1/workspaces", json={"name": workspace})
        assert made.status_code == 201, made.text
        added = console_admin.api(
            "PUT", f"/api/v1/workspaces/{workspace}/members", json={"username": name, "role": "member"}
        )
        assert added.status_code == 200, added.text
        login = console_admin.api("POST", "/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        return User(console_admin.server, name, tmp_path / f"{name}-home", token=login.json()["token"])

    return make


def sign_in(page: Page, server: ServerProcess, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{server.url}/")
    expect(page.get_by_role("heading", name="Sign in to AstraGo")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
