"""Kubernetes API failures → BackendError messages that say what to install, grant or fix."""

from __future__ import annotations

import httpx2
from lightkube.core.exceptions import ApiError

from astrago.backends.base import BackendError, BackendUnavailable

RBAC_HINT = "grant it with the Role in docs/kubernetes.md (section RBAC)"


def status_code(exc: BaseException) -> int | None:
    """The HTTP status of an API failure, whether lightkube could decode the Status body or not."""
    if isinstance(exc, ApiError) and exc.status is not None and exc.status.code:
        return int(exc.status.code)
    if isinstance(exc, httpx2.HTTPStatusError):
        return exc.response.status_code
    return None


def message_of(exc: BaseException) -> str:
    if isinstance(exc, ApiError) and exc.status is not None and exc.status.message:
        return str(exc.status.message)
    if isinstance(exc, httpx2.HTTPStatusError):
        try:
            body = exc.response.json()
        except ValueError:
            return exc.response.text[:300] or str(exc)
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    return str(exc) or type(exc).__name__


def is_gone(exc: BaseException) -> bool:
    return status_code(exc) == 410


def is_conflict(exc: BaseException) -> bool:
    return status_code(exc) == 409


def is_not_found(exc: BaseException) -> bool:
    return status_code(exc) == 404


def is_api_failure(exc: BaseException) -> bool:
    return isinstance(exc, httpx2.HTTPError)


def unreachable(server: str, exc: BaseException) -> str:
    return (
        f"cannot reach the Kubernetes API server at {server}: {message_of(exc)} "
        "(check --kubeconfig / ASTRAGO_KUBECONFIG, the cluster address and the network)"
    )


def describe(exc: BaseException, action: str, server: str) -> str:
    """A one-line explanation of why `action` (e.g. "create Job ag-x in namespace astrago") failed."""
    code = status_code(exc)
    if code is None:
        return unreachable(server, exc) if isinstance(exc, httpx2.TransportError) else f"{action}: {exc}"
    if code == 401:
        return f"{action}: the API server rejected AstraGo's credentials (401); renew the kubeconfig token"
    if code == 403:
        return f"{action}: permission denied (403); {RBAC_HINT}. Server said: {message_of(exc)}"
    if code == 422:
        return f"{action}: Kubernetes rejected the object as invalid: {message_of(exc)}"
    return f"{action}: Kubernetes answered {code}: {message_of(exc)}"


def is_transient(exc: BaseException) -> bool:
    """No answer (connection refused, timeout) or the server's own failure (5xx, 429 throttling)."""
    code = status_code(exc)
    if code is None:
        return isinstance(exc, httpx2.TransportError)
    return code >= 500 or code == 429


def api_error(exc: BaseException, action: str, server: str) -> BackendError:
    """The BackendError for a failed API call: BackendUnavailable when retrying may help."""
    error_type = BackendUnavailable if is_transient(exc) else BackendError
    return error_type(describe(exc, action, server))
