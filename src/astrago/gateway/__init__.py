"""The authenticated gateway: `/proxy/<workload>/<port>/...` to a workload's port (HTTP, WebSocket, SSE)."""
