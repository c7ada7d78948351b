"""Where `astrago login` keeps the server URL and token (readable by its owner only)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


def config_path() -> Path:
    explicit = os.environ.get("ASTRAGO_CLI_CONFIG")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "astrago" / "cli.json"


class ConfigUnreadable(ValueError):
    pass


@dataclass
class ClientConfig:
    url: str | None = None
    token: str | None = None
    username: str | None = None
    workspace: str | None = None

    @classmethod
    def load(cls) -> ClientConfig:
        path = config_path()
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigUnreadable(f"cannot read the CLI config {path}: {exc}") from exc
        return cls(**{k: data.get(k) for k in ("url", "token", "username", "workspace")})

    def save(self) -> Path:
        path = config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # The token is a credential: readable by its owner only, written atomically.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(self), handle, indent=2)
        tmp.replace(path)
        return path
