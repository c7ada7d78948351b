"""Print the API's OpenAPI document (the web console's typed client is generated from it at build time).

python -m astrago.api.schema_dump > build/openapi.json"""

from __future__ import annotations

import json
import sys

from astrago.api.app import describe_api


def main() -> None:
    json.dump(describe_api().openapi(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
