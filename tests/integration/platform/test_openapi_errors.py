"""The OpenAPI document states every operation's error answers as problem+json, as the server sends them
(checked against live answers here, and against thousands of generated requests by the fuzzing test)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.server import User

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def document(module_admin: User) -> dict[str, Any]:
    response = module_admin.api("GET", "/openapi.json")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in document["paths"].items() for m, op in ops.items()]


def test_every_error_answer_is_a_documented_problem(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    operations = _operations(document)
    assert len(operations) >= 20
    for method, path, operation in operations:
        responses = operation["responses"]
        errors = {int(code): r for code, r in responses.items() if int(code) >= 400}
        where = f"{method.upper()} {path}"
        assert {400, 500, 503} <= errors.keys(), where
        if operation.get("security"):
            assert {401, 403} <= errors.keys(), where
        if operation.get("parameters") or "requestBody" in operation:
            assert {404, 422} <= errors.keys(), where
        if "requestBody" in operation:
            assert 413 in errors, where
        for status, response in errors.items():
            assert response["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}, (
                where,
                status,
            )
            assert response["description"], (where, status)


def test_logs_are_documented_as_plain_text(document: dict[str, Any]) -> None:
    ok = document["paths"]["/api/v1/workloads/{workload_id}/logs"]["get"]["responses"]["200"]
    assert "text/plain" in ok["content"]


def test_answers_match_the_document(module_admin: User, document: dict[str, Any]) -> None:
    """A few real refusals, each with a status and content type its operation documents."""
    assert module_admin.api("POST", "/api/v1/workspaces", json={"name": "ml-doc"}).status_code == 201
    anonymous = User(module_admin.server, "nobody", module_admin.config_dir, token="ast_unknown")
    answers = [
        ("get", "/api/v1/workspaces/{name}", module_admin.api("GET", "/api/v1/workspaces/nope")),
        (
            "post",
            "/api/v1/workspaces",
            module_admin.api("POST", "/api/v1/workspaces", json={"name": "ml-doc"}),
        ),
        ("post", "/api/v1/workloads", module_admin.api("POST", "/api/v1/workloads", json={"workspace": 1})),
        ("get", "/api/v1/auth/me", anonymous.api("GET", "/api/v1/auth/me")),
        ("get", "/api/v1/workspaces/{name}", module_admin.api("GET", "/api/v1/workspaces/a%00b")),
    ]
    for method, path, response in answers:
        documented = document["paths"][path][method]["responses"]
        assert str(response.status_code) in documented, (path, response.status_code)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == response.status_code
