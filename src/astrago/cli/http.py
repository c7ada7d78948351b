"""The CLI's connection to a server: where it is, the token, and turning problems into CliErrors."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from astrago.cli.errors import CliError

DEFAULT_URL = "http://127.0.0.1:8080"


def config_path() -> Path:
    explicit = os.environ.get("ASTRAGO_CLI_CONFIG")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "astrago" / "cli.json"


@dataclass
class CliConfig:
    url: str | None = None
    token: str | None = None
    username: str | None = None
    workspace: str | None = None

    @classmethod
    def load(cls) -> CliConfig:
        path = config_path()
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CliError(
                f"cannot read the CLI config {path}: {exc}", hint="delete it and log in again"
            ) from exc
        return cls(**{k: data.get(k) for k in ("url", "token", "username", "workspace")})

    def save(self) -> Path:
        path = config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # The token is a credential: readable by its owner only, written atomically.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.__dict__, handle, indent=2)
        tmp.replace(path)
        return path


def _problem_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"the server answered {response.status_code}: {response.text[:300]}"
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return f"the server answered {response.status_code}: {body}"


class ApiClient:
    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    @classmethod
    def from_config(cls, require_token: bool = True) -> ApiClient:
        config = CliConfig.load()
        url = os.environ.get("ASTRAGO_URL") or config.url or DEFAULT_URL
        token = os.environ.get("ASTRAGO_TOKEN") or config.token
        if require_token and not token:
            raise CliError("you are not logged in", hint=f"run `astrago login --url {url} --username NAME`")
        return cls(url, token)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._errors():
            response = self.http.request(method, path, **kwargs)
        self._raise_for_problem(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    @contextmanager
    def stream(self, path: str, params: dict[str, Any]) -> Iterator[Iterator[bytes]]:
        with self._errors(), self.http.stream("GET", path, params=params, timeout=None) as response:
            if response.status_code >= 400:
                response.read()
                self._raise_for_problem(response)
            yield response.iter_raw()

    def raise_for_problem(self, response: httpx.Response) -> None:
        self._raise_for_problem(response)

    def _raise_for_problem(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        message = _problem_message(response)
        hint = "log in again with `astrago login`" if response.status_code == 401 else None
        raise CliError(message, exit_code=1, hint=hint)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError as exc:
            raise CliError(
                f"cannot reach the AstraGo server at {self.url} ({exc})",
                hint="is `astrago server` running there? set ASTRAGO_URL or log in with --url",
            ) from exc
        except httpx.TimeoutException as exc:
            raise CliError(f"the server at {self.url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise CliError(f"talking to {self.url} failed: {exc}") from exc
