"""API failures become messages that say what to fix."""

from __future__ import annotations

import httpx2
from lightkube.core.exceptions import ApiError

from astrago.backends.kubernetes.errors import describe, is_conflict, is_gone, status_code

SERVER = "https://10.0.0.1:6443"


def _failure(code: int, message: str, content_type: str = "application/json") -> httpx2.HTTPStatusError:
    request = httpx2.Request("POST", f"{SERVER}/apis/batch/v1/namespaces/astrago/jobs")
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "message": message}
    response = httpx2.Response(code, json=body, headers={"Content-Type": content_type}, request=request)
    if content_type == "application/json":
        return ApiError(request=request, response=response)
    return httpx2.HTTPStatusError(message, request=request, response=response)


def test_status_codes_with_and_without_a_decoded_status() -> None:
    assert status_code(_failure(409, "exists")) == 409
    assert is_conflict(_failure(409, "exists", content_type="application/json; charset=utf-8"))
    assert is_gone(_failure(410, "too old resource version"))
    assert status_code(RuntimeError("x")) is None


def test_descriptions_name_the_fix() -> None:
    action = "create Job ag-x in namespace astrago"
    assert "permission denied (403); grant it with the Role in docs/kubernetes.md" in describe(
        _failure(403, 'jobs.batch is forbidden: User "x" cannot create'), action, SERVER
    )
    assert "rejected the object as invalid: spec.template: Required value" in describe(
        _failure(422, "spec.template: Required value"), action, SERVER
    )
    assert "renew the kubeconfig token" in describe(_failure(401, "Unauthorized"), action, SERVER)
    unreachable = describe(httpx2.ConnectError("connection refused"), action, SERVER)
    assert unreachable.startswith(f"cannot reach the Kubernetes API server at {SERVER}: connection refused")
