"""Serving the built console: long-cached hashed assets, SPA fallback, API paths left alone, and a page
that says how to build the console when it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from astrago.api.console import IMMUTABLE, install_console
from astrago.api.problems import install_problem_handlers


def _app(root: Path) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/api/v1/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    install_console(app, root)
    return TestClient(app)


@pytest.fixture
def built(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "index-Ab12Cd.js").write_text("console.log('app')")
    (tmp_path / "favicon.svg").write_text("<svg/>")
    return tmp_path


def test_hashed_assets_are_cached_for_a_year_and_index_is_revalidated(built: Path) -> None:
    client = _app(built)
    asset = client.get("/assets/index-Ab12Cd.js")
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == IMMUTABLE
    page = client.get("/")
    assert page.status_code == 200
    assert "id=root" in page.text
    assert page.headers["cache-control"] == "no-cache"
    assert client.get("/favicon.svg").text == "<svg/>"


def test_client_routes_get_the_app_and_api_paths_stay_the_apis(built: Path) -> None:
    client = _app(built)
    deep = client.get("/workloads/abc123")
    assert deep.status_code == 200
    assert "id=root" in deep.text
    assert client.get("/api/v1/ping").json() == {"pong": "yes"}
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert client.get("/metrics").status_code == 404  # not shadowed by the app's page
    assert client.get("/assets/missing.js").status_code == 404


def test_a_path_outside_the_build_is_never_served(built: Path) -> None:
    secret = built.parent / "secret.txt"
    secret.write_text("do not serve")
    response = _app(built).get("/..%2Fsecret.txt")
    assert "do not serve" not in response.text


def test_without_built_assets_the_root_says_how_to_build_them(tmp_path: Path) -> None:
    page = _app(tmp_path / "web").get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "make web" in page.text
