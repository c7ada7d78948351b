#!/usr/bin/env bash
# The API benchmark (see README.md): AstraGo from the project's venv vs dstack in its own venv under .work/.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
exec "$root/.venv/bin/python" "$root/benchmarks/api/bench.py" "$@"
