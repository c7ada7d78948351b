"""Where the gateway serves a workload's port: one path scheme shared by the server and the backends
(an app behind the gateway must know its base URL, e.g. JupyterLab's `base_url`)."""

from __future__ import annotations

PROXY_PREFIX = "/proxy"


def proxy_path(workload_id: str, port: int) -> str:
    """The gateway's path of `port` of a workload, with the trailing slash apps expect of a base URL."""
    return f"{PROXY_PREFIX}/{workload_id}/{port}/"
